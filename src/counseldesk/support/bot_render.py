"""How support conversations read in the bot: list labels, the summary of a draft, a conversation.

Pure functions over already-loaded data. Every text is built from the catalog (which escapes what
it fills in); user text is clipped *before* it is escaped, so a cut never splits an HTML entity,
and whole messages are measured as Telegram measures them (the text after HTML parsing).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from counseldesk.i18n import t
from counseldesk.support.bot_state import Draft
from counseldesk.support.bot_views import ConversationView
from counseldesk.support.models import SenderType, SupportMessage, SupportTicket, TicketStatus
from counseldesk.support.service import CLOSED_STATES, Media

# Telegram's limit for one message, after HTML parsing, counted in UTF-16 code units.
TEXT_LIMIT = 4096
# A long message in the conversation view is cut here, so several still fit on one screen.
VIEW_ENTRY_CHARS = 700
SUMMARY_BODY_CHARS = 1500
LIST_SUBJECT_CHARS = 30
ACK_SUBJECT_CHARS = 40

STATUS_ICONS = {
    TicketStatus.OPEN: "🟢",
    TicketStatus.IN_PROGRESS: "🟡",
    TicketStatus.REPLIED: "💬",
    TicketStatus.RESOLVED: "✅",
    TicketStatus.CLOSED: "⚪️",
}

_TAG = re.compile(r"<[^>]+>")


def visible_length(text: str) -> int:
    """Length of an HTML message as Telegram counts it: tags gone, entities decoded, UTF-16."""
    plain = html.unescape(_TAG.sub("", text))
    return len(plain.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def is_closed(ticket: SupportTicket) -> bool:
    return ticket.status in CLOSED_STATES


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz)


def list_date(moment: datetime, tz: ZoneInfo, now: datetime) -> str:
    """Today: the time; this year: day and month; older: with the year."""
    local, today = _local(moment, tz), _local(now, tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%d %b")
    return local.strftime("%d %b %Y")


def stamp(moment: datetime, tz: ZoneInfo, now: datetime) -> str:
    local, today = _local(moment, tz), _local(now, tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%d %b, %H:%M")
    return local.strftime("%d %b %Y, %H:%M")


def media_label(media_kind: str | None, lang: str | None) -> str:
    return t(f"support.media.{media_kind}", lang) if media_kind else ""


def status_label(status: TicketStatus, lang: str | None) -> str:
    return t(f"support.status.{status.value}", lang)


def list_label(
    ticket: SupportTicket, *, active: bool, tz: ZoneInfo, now: datetime, lang: str | None
) -> str:
    """A button: status icon, subject, last activity; the active conversation marked."""
    mark = t("support.list.active_mark", lang) + " " if active else ""
    subject = clip(ticket.subject, LIST_SUBJECT_CHARS)
    when = list_date(ticket.last_activity_at, tz, now)
    # Button labels are plain text (no HTML parsing): nothing to escape here.
    return f"{mark}{STATUS_ICONS[ticket.status]} {subject} · {when}"


def ack_subject(ticket: SupportTicket) -> str:
    return clip(ticket.subject, ACK_SUBJECT_CHARS)


def _body_with_media(body: str | None, media: Media | None, limit: int, lang: str | None) -> str:
    """Raw (unescaped) text: the media label, then the text, clipped."""
    parts = [media_label(media.kind if media else None, lang), clip(body or "", limit)]
    return " — ".join(p for p in parts if p)


def summary(draft: Draft, lang: str | None) -> str:
    return t(
        "support.compose.summary",
        lang,
        category=draft.category_name or t("support.compose.no_category", lang),
        subject=draft.subject or "",
        body=_body_with_media(draft.body, draft.media, SUMMARY_BODY_CHARS, lang),
    )


def _entry(
    message: SupportMessage, view: ConversationView, tz: ZoneInfo, now: datetime, lang: str | None
) -> str:
    when = stamp(message.created_at, tz, now)
    if message.sender_type is SenderType.STUDENT:
        head = t("support.view.you", lang, when=when)
    else:
        name = view.counselor_names.get(message.counselor_id or 0) or t(
            "support.view.counselor_unknown", lang
        )
        head = t("support.view.counselor", lang, name=name, when=when)
    media = (
        Media(kind=message.media_kind, file_id=message.media_file_id or "")
        if message.media_kind
        else None
    )
    body = html.escape(_body_with_media(message.body, media, VIEW_ENTRY_CHARS, lang), quote=False)
    return f"{head}\n{body}"


def conversation(view: ConversationView, *, tz: ZoneInfo, now: datetime, lang: str | None) -> str:
    """The conversation as one message: header, the newest messages that fit, a footer.

    Older messages give way first when the limit is near; a line says some are not shown.
    """
    ticket = view.ticket
    header = t(
        "support.view.header",
        lang,
        subject=ticket.subject,
        status=status_label(ticket.status, lang),
        started=stamp(ticket.created_at, tz, now),
    )
    footer = t(
        "support.view.footer_closed" if is_closed(ticket) else "support.view.footer_active", lang
    )
    hidden_line = t("support.view.older_hidden", lang)
    budget = TEXT_LIMIT - visible_length(header) - visible_length(footer)
    budget -= visible_length(hidden_line) + 6  # room for the line and the blank lines around
    entries: list[str] = []
    for message in reversed(view.messages):  # newest first, until the budget is spent
        entry = _entry(message, view, tz, now, lang)
        cost = visible_length(entry) + 2
        if cost > budget:
            break
        entries.append(entry)
        budget -= cost
    entries.reverse()
    parts = [header]
    if len(entries) < len(view.messages) or view.maybe_more:
        parts.append(hidden_line)
    parts.extend(entries or [t("support.view.no_messages", lang)])
    parts.append(footer)
    return "\n\n".join(parts)

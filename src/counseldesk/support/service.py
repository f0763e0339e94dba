"""The rules of support conversations, shared by the bot, the dashboard and the JSON API.

Every change here also keeps the ticket's inbox columns (last activity, preview, counts) current
in the same transaction, emits a live event for the dashboards (published after commit) and,
when a student must hear about it, queues an outbox row (sent by the worker after commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.content.service import get_office_settings
from counseldesk.errors import Conflict, InvalidInput, NotFound, storable_text
from counseldesk.i18n import t
from counseldesk.realtime.events import emit
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.support.crisis import find_crisis_wording
from counseldesk.support.labels import PRIORITY_LABELS, STATUS_LABELS
from counseldesk.support.models import (
    SenderType,
    SupportCategory,
    SupportMessage,
    SupportTicket,
    TicketPriority,
    TicketRead,
    TicketStatus,
)
from counseldesk.telegram.models import Notification, NotificationStatus
from counseldesk.telegram.outbox import OUTBOX_CHANNEL, do_enqueue
from counseldesk.telegram.outbox_store import emit_update

MAX_SUBJECT = 200
MAX_BODY = 4000
PREVIEW_LENGTH = 140
CLOSED_STATES = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})
MEDIA_KINDS = frozenset({"photo", "document", "voice"})


@dataclass(frozen=True)
class Media:
    kind: str
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None


# --- checks -----------------------------------------------------------------------------------


def check_subject(text: str | None) -> str:
    subject = storable_text(" ".join((text or "").split()), "A subject")
    if not 3 <= len(subject) <= MAX_SUBJECT:
        raise InvalidInput(f"A subject has 3 to {MAX_SUBJECT} characters.")
    return subject


def check_body(text: str | None, *, media: Media | None = None) -> str:
    body = storable_text((text or "").strip(), "A message")
    if not body and media is None:
        raise InvalidInput("A message needs some text.")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"A message has at most {MAX_BODY} characters.")
    return body


def _preview(body: str, media: Media | None) -> str:
    text = " ".join(body.split())
    if not text and media is not None:
        text = {"photo": "📷 Photo", "document": "📄 Document", "voice": "🎤 Voice message"}.get(
            media.kind, "Attachment"
        )
    return text[:PREVIEW_LENGTH]


# --- lookups ----------------------------------------------------------------------------------


async def get_ticket(
    session: AsyncSession, ticket_id: int, *, for_update: bool = False
) -> SupportTicket:
    stmt = select(SupportTicket).where(SupportTicket.id == ticket_id)
    if for_update:
        stmt = stmt.with_for_update()
    ticket = (await session.execute(stmt)).scalar_one_or_none()
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return ticket


async def get_student_ticket(
    session: AsyncSession, student: Student, ticket_id: int
) -> SupportTicket:
    """The ticket, if it is this student's (a student never reaches another's conversation)."""
    ticket = await get_ticket(session, ticket_id)
    if ticket.telegram_user_id != student.telegram_user_id:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return ticket


async def list_categories(session: AsyncSession) -> list[SupportCategory]:
    result = await session.scalars(
        select(SupportCategory)
        .where(SupportCategory.is_active)
        .order_by(SupportCategory.sort_order, SupportCategory.name)
    )
    return list(result.all())


async def get_category(session: AsyncSession, category_id: int) -> SupportCategory:
    category = await session.get(SupportCategory, category_id)
    if category is None or not category.is_active:
        raise InvalidInput(f"Category {category_id} does not exist.")
    return category


async def list_student_tickets(
    session: AsyncSession, student: Student, *, offset: int, limit: int
) -> tuple[list[SupportTicket], bool]:
    """A page of the student's own conversations, newest activity first; and whether more follow.

    A student has a handful of tickets, so OFFSET over their index range is cheap here.
    """
    rows = await session.scalars(
        select(SupportTicket)
        .where(SupportTicket.telegram_user_id == student.telegram_user_id)
        .order_by(SupportTicket.last_activity_at.desc(), SupportTicket.id.desc())
        .offset(offset)
        .limit(limit + 1)
    )
    tickets = list(rows.all())
    return tickets[:limit], len(tickets) > limit


async def recent_messages(
    session: AsyncSession, ticket: SupportTicket, *, limit: int, include_internal: bool
) -> list[SupportMessage]:
    """The newest `limit` messages, oldest first (as a chat shows them)."""
    stmt = select(SupportMessage).where(SupportMessage.ticket_id == ticket.id)
    if not include_internal:
        stmt = stmt.where(
            SupportMessage.is_internal.is_(False), SupportMessage.sender_type != SenderType.SYSTEM
        )
    rows = await session.scalars(stmt.order_by(SupportMessage.id.desc()).limit(limit))
    return list(reversed(rows.all()))


# --- what students do ---------------------------------------------------------------------------


async def do_open_ticket(
    session: AsyncSession,
    student: Student,
    *,
    category_id: int | None,
    subject: str,
    body: str,
    media: Media | None = None,
    telegram_message_id: int | None = None,
) -> tuple[SupportTicket, SupportMessage]:
    subject = check_subject(subject)
    body = check_body(body, media=media)
    if category_id is not None:
        await get_category(session, category_id)
    ticket = SupportTicket(
        telegram_user_id=student.telegram_user_id,
        student_id=student.id,
        student_name=student.full_name,
        category_id=category_id,
        subject=subject,
        status=TicketStatus.OPEN,
        priority=TicketPriority.MEDIUM,
        message_count=0,
        last_message_preview="",
    )
    session.add(ticket)
    await session.flush()
    message = await _add_student_message(session, student, ticket, body, media, telegram_message_id)
    emit(session, "ticket.created", _ticket_event(ticket))
    return ticket, message


async def do_add_student_message(
    session: AsyncSession,
    student: Student,
    ticket: SupportTicket,
    *,
    body: str | None,
    media: Media | None = None,
    telegram_message_id: int | None = None,
) -> SupportMessage:
    """A student writes into their conversation; a closed one opens again."""
    if ticket.telegram_user_id != student.telegram_user_id:
        raise NotFound(f"Ticket {ticket.id} does not exist.")
    clean = check_body(body, media=media)
    status = ticket.status
    if ticket.status in CLOSED_STATES:
        await _system_note(session, ticket, "Reopened by the student")
        ticket.status = TicketStatus.OPEN
        ticket.closed_at = None
    elif ticket.status is TicketStatus.REPLIED:
        ticket.status = (
            TicketStatus.IN_PROGRESS if ticket.assigned_counselor_id else TicketStatus.OPEN
        )
    message = await _add_student_message(
        session, student, ticket, clean, media, telegram_message_id
    )
    if ticket.status is not status:
        # An open chat shows the ticket's status from ticket events, not from its messages.
        emit(session, "ticket.updated", _ticket_event(ticket))
    return message


async def do_close_by_student(
    session: AsyncSession, student: Student, ticket: SupportTicket
) -> SupportTicket:
    if ticket.telegram_user_id != student.telegram_user_id:
        raise NotFound(f"Ticket {ticket.id} does not exist.")
    if ticket.status is TicketStatus.CLOSED:
        return ticket
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = datetime.now(UTC)
    await _system_note(session, ticket, "Closed by the student")
    emit(session, "ticket.updated", _ticket_event(ticket))
    return ticket


async def do_reopen_by_student(
    session: AsyncSession, student: Student, ticket: SupportTicket
) -> SupportTicket:
    if ticket.telegram_user_id != student.telegram_user_id:
        raise NotFound(f"Ticket {ticket.id} does not exist.")
    if ticket.status not in CLOSED_STATES:
        return ticket
    ticket.status = TicketStatus.OPEN
    ticket.closed_at = None
    await _system_note(session, ticket, "Reopened by the student")
    emit(session, "ticket.updated", _ticket_event(ticket))
    return ticket


async def _add_student_message(
    session: AsyncSession,
    student: Student,
    ticket: SupportTicket,
    body: str,
    media: Media | None,
    telegram_message_id: int | None,
) -> SupportMessage:
    if media is not None and media.kind not in MEDIA_KINDS:
        raise InvalidInput(f"Unsupported attachment kind {media.kind!r}.")
    message = SupportMessage(
        ticket_id=ticket.id,
        telegram_user_id=student.telegram_user_id,
        sender_type=SenderType.STUDENT,
        body=body,
        is_internal=False,
        telegram_message_id=telegram_message_id,
        media_kind=media.kind if media else None,
        media_file_id=media.file_id if media else None,
        media_file_name=media.file_name if media else None,
        media_mime_type=media.mime_type if media else None,
    )
    session.add(message)
    await session.flush()
    _touch(ticket, message, _preview(body, media))
    ticket.last_student_message_id = message.id
    emit(session, "message.created", _message_event(ticket, message))
    crisis = await find_crisis_wording(session, body)
    if crisis is not None:
        await _raise_crisis(session, student, ticket, crisis)
    return message


async def _raise_crisis(
    session: AsyncSession, student: Student, ticket: SupportTicket, wording: str
) -> None:
    first_time = ticket.crisis_detected_at is None
    ticket.priority = TicketPriority.URGENT
    ticket.crisis_detected_at = ticket.crisis_detected_at or datetime.now(UTC)
    await _system_note(session, ticket, f"Possible crisis: the student wrote “{wording}”")
    emit(
        session,
        "ticket.crisis",
        {**_ticket_event(ticket), "student_name": student.full_name, "wording": wording},
    )
    if first_time:
        office = await get_office_settings(session)
        contacts = office.emergency_contacts or office.phone
        await do_enqueue(
            session,
            kind="crisis_contacts",
            telegram_user_id=student.telegram_user_id,
            text=t("support.crisis", student.language_code, contacts=contacts or "—"),
            ref={"ticket_id": ticket.id},
        )


# --- what counselors do -------------------------------------------------------------------------


async def do_reply(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket, *, body: str
) -> SupportMessage:
    """A counselor's answer: stored, then delivered to the student through the outbox."""
    clean = check_body(body)
    message = await _counselor_message(session, counselor, ticket, clean, internal=False)
    language = await _student_language(session, ticket)
    notification = await do_enqueue(
        session,
        kind="support_reply",
        telegram_user_id=ticket.telegram_user_id,
        text=t(
            "support.reply",
            language,
            counselor=counselor.full_name,
            subject=ticket.subject,
            body=clean,
        ),
        ref={"ticket_id": ticket.id, "message_id": message.id},
    )
    message.notification_id = notification.id
    if ticket.assigned_counselor_id is None:
        ticket.assigned_counselor_id = counselor.id
    ticket.status = TicketStatus.REPLIED
    ticket.closed_at = None
    _touch(ticket, message, _preview(clean, None))
    await do_mark_read(session, counselor, ticket)
    emit(session, "message.created", _message_event(ticket, message, delivery="queued"))
    emit(session, "ticket.updated", _ticket_event(ticket))
    return message


async def do_add_note(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket, *, body: str
) -> SupportMessage:
    """An internal note: in the timeline for counselors, never sent to the student."""
    message = await _counselor_message(session, counselor, ticket, check_body(body), internal=True)
    ticket.message_count += 1
    emit(session, "message.created", _message_event(ticket, message))
    return message


_UNSET: Any = object()


async def do_update_ticket(
    session: AsyncSession,
    counselor: Counselor,
    ticket: SupportTicket,
    *,
    status: TicketStatus | None = None,
    priority: TicketPriority | None = None,
    assignee_id: int | None = _UNSET,
) -> SupportTicket:
    """Change status, priority or assignee; each change is written into the timeline."""
    changes: list[str] = []
    if status is not None and status is not ticket.status:
        changes.append(f"Status: {STATUS_LABELS[ticket.status]} → {STATUS_LABELS[status]}")
        ticket.status = status
        ticket.closed_at = datetime.now(UTC) if status in CLOSED_STATES else None
        if status in CLOSED_STATES:
            await do_enqueue(
                session,
                kind="support_status",
                telegram_user_id=ticket.telegram_user_id,
                text=t(
                    "support.closed_by_office",
                    await _student_language(session, ticket),
                    subject=ticket.subject,
                ),
                ref={"ticket_id": ticket.id},
            )
    if priority is not None and priority is not ticket.priority:
        changes.append(
            f"Priority: {PRIORITY_LABELS[ticket.priority]} → {PRIORITY_LABELS[priority]}"
        )
        ticket.priority = priority
    if assignee_id is not _UNSET and assignee_id != ticket.assigned_counselor_id:
        if assignee_id is None:
            changes.append("Unassigned")
        else:
            assignee = await session.get(Counselor, assignee_id)
            if assignee is None or not assignee.is_active:
                raise InvalidInput(f"Counselor {assignee_id} does not exist or is inactive.")
            changes.append(
                "Taken" if assignee.id == counselor.id else f"Assigned to {assignee.full_name}"
            )
        ticket.assigned_counselor_id = assignee_id
        if ticket.status is TicketStatus.OPEN and assignee_id is not None:
            ticket.status = TicketStatus.IN_PROGRESS
    if not changes:
        return ticket
    await _system_note(session, ticket, f"{'; '.join(changes)} (by {counselor.full_name})")
    emit(session, "ticket.updated", _ticket_event(ticket))
    return ticket


async def do_mark_read(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket, up_to: int | None = None
) -> None:
    """Remember how far the counselor has read; never moves backwards."""
    last = up_to if up_to is not None else ticket.last_student_message_id or 0
    stmt = insert(TicketRead).values(
        counselor_id=counselor.id, ticket_id=ticket.id, last_read_message_id=last
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[TicketRead.counselor_id, TicketRead.ticket_id],
        set_={"last_read_message_id": func.greatest(TicketRead.last_read_message_id, last)},
    )
    await session.execute(stmt)


async def do_take(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket
) -> SupportTicket:
    if ticket.assigned_counselor_id not in (None, counselor.id):
        raise Conflict("This ticket is assigned to another counselor; reassign it instead.")
    return await do_update_ticket(session, counselor, ticket, assignee_id=counselor.id)


# --- shared helpers -----------------------------------------------------------------------------


async def _counselor_message(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket, body: str, *, internal: bool
) -> SupportMessage:
    message = SupportMessage(
        ticket_id=ticket.id,
        telegram_user_id=ticket.telegram_user_id,
        sender_type=SenderType.COUNSELOR,
        counselor_id=counselor.id,
        body=body,
        is_internal=internal,
    )
    session.add(message)
    await session.flush()
    return message


async def _student_language(session: AsyncSession, ticket: SupportTicket) -> str | None:
    return await session.scalar(
        select(Student.language_code).where(Student.id == ticket.student_id)
    )


def _touch(ticket: SupportTicket, message: SupportMessage, preview: str) -> None:
    ticket.last_activity_at = datetime.now(UTC)
    ticket.last_message_preview = preview
    ticket.last_sender_type = message.sender_type
    ticket.message_count += 1


async def _system_note(session: AsyncSession, ticket: SupportTicket, text: str) -> SupportMessage:
    message = SupportMessage(
        ticket_id=ticket.id,
        telegram_user_id=ticket.telegram_user_id,
        sender_type=SenderType.SYSTEM,
        body=text,
        is_internal=True,
    )
    session.add(message)
    await session.flush()
    ticket.message_count += 1
    emit(session, "message.created", _message_event(ticket, message))
    return message


def _ticket_event(ticket: SupportTicket) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "assigned_counselor_id": ticket.assigned_counselor_id,
        "last_activity_at": ticket.last_activity_at.isoformat()
        if ticket.last_activity_at
        else None,
        "preview": ticket.last_message_preview,
    }


def _message_event(
    ticket: SupportTicket, message: SupportMessage, *, delivery: str | None = None
) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "message_id": message.id,
        "sender_type": message.sender_type.value,
        "is_internal": message.is_internal,
        "delivery": delivery,
    }


# --- the JSON API's additions -------------------------------------------------------------------


async def get_message(session: AsyncSession, message_id: int) -> SupportMessage:
    message = await session.get(SupportMessage, message_id)
    if message is None:
        raise NotFound(f"Message {message_id} does not exist.")
    return message


async def do_mark_read_until(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket, up_to: int | None
) -> None:
    """Read marks from the dashboard: up to the message the counselor has seen (or all).

    Clamped to the ticket's newest student message, so a mistaken or future id cannot mark
    messages read that have not arrived yet.
    """
    newest = ticket.last_student_message_id or 0
    await do_mark_read(session, counselor, ticket, newest if up_to is None else min(up_to, newest))


async def do_retry_delivery(
    session: AsyncSession, counselor: Counselor, message_id: int
) -> SupportMessage:
    """Send a reply whose delivery failed once more: its outbox row goes back to pending.

    Only a failed row is retried: a queued one is still on its way and a sent one arrived, so
    a retry could only produce a duplicate. A counselor's explicit retry also clears the
    student's "unreachable" mark (set when Telegram said the bot was blocked): they may have
    unblocked it, and if not, Telegram's 403 sets the mark again.
    """
    message = await get_message(session, message_id)
    if (
        message.sender_type is not SenderType.COUNSELOR
        or message.is_internal
        or message.notification_id is None
    ):
        raise Conflict("Only a counselor's reply that has a delivery record can be retried.")
    notification = (
        await session.execute(
            select(Notification).where(Notification.id == message.notification_id).with_for_update()
        )
    ).scalar_one()
    if notification.status not in (NotificationStatus.FAILED, NotificationStatus.CANCELLED):
        raise Conflict(
            f"Only a failed delivery can be retried; this one is {notification.status.value}."
        )
    notification.status = NotificationStatus.PENDING
    notification.attempts = 0
    notification.last_error = None
    notification.claimed_at = None
    notification.scheduled_for = datetime.now(UTC)
    await session.execute(
        update(Student)
        .where(Student.telegram_user_id == notification.telegram_user_id)
        .values(is_reachable=True)
    )
    await session.flush()
    await session.execute(select(func.pg_notify(OUTBOX_CHANNEL, str(notification.id))))
    emit_update(
        session,
        notification_id=notification.id,
        status=NotificationStatus.PENDING,
        kind=notification.kind,
        ref=notification.payload.get("ref"),
    )
    return message

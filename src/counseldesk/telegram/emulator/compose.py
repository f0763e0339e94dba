"""Pieces every sending method shares: formatted text, reply_markup, the message replied to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from counseldesk.telegram.emulator.context import CallContext
from counseldesk.telegram.emulator.entities import parse_html
from counseldesk.telegram.emulator.errors import bad_request
from counseldesk.telegram.emulator.markup import check_reply_markup
from counseldesk.telegram.emulator.records import Chat, StoredMessage


@dataclass
class Formatted:
    text: str
    entities: list[dict[str, Any]]
    raw: str | None  # the text as sent, when a parse_mode turned it into text + entities
    parse_mode: str | None


def formatted(ctx: CallContext, field: str, entities_field: str) -> Formatted:
    """`field` (text or caption) with its parse_mode applied, or with explicit entities."""
    source = ctx.params.get_str(field) or ""
    mode = ctx.params.get_str("parse_mode") or None
    if mode is None:
        entities = ctx.params.get_json(entities_field, error="can't parse entities JSON object")
        if entities is not None and not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        return Formatted(source, entities or [], None, None)
    if mode.lower() == "html":
        parsed = parse_html(source)
        return Formatted(parsed.text, parsed.entities, source, mode)
    if mode.lower() in ("markdown", "markdownv2"):
        # Accepted but not parsed: the emulator checks HTML only, the mode counseldesk uses.
        return Formatted(source, [], source, mode)
    raise bad_request("unsupported parse_mode")


def message_text(ctx: CallContext) -> Formatted:
    text = formatted(ctx, "text", "entities")
    if not text.text.strip():
        raise bad_request("message text is empty")
    # Telegram counts characters after entity parsing: markup does not use up the limit.
    if len(text.text) > 4096:
        raise bad_request("message is too long")
    return text


def caption(ctx: CallContext) -> Formatted:
    text = formatted(ctx, "caption", "caption_entities")
    if len(text.text) > 1024:
        raise bad_request("message caption is too long")
    return text


def reply_markup(ctx: CallContext, *, inline_only: bool = False) -> dict[str, Any] | None:
    markup = ctx.params.get_json(
        "reply_markup", error="can't parse reply keyboard markup JSON object"
    )
    return check_reply_markup(markup, inline_only=inline_only)


def reply_target(ctx: CallContext, chat: Chat) -> StoredMessage | None:
    """The message replied to: reply_parameters, or the older reply_to_message_id."""
    parameters = ctx.params.get_json("reply_parameters", error="can't parse reply parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise bad_request("can't parse reply parameters")
    if parameters:
        message_id = parameters.get("message_id")
        allow_missing = bool(parameters.get("allow_sending_without_reply"))
    else:
        message_id = ctx.params.get_int("reply_to_message_id")
        allow_missing = ctx.params.get_bool("allow_sending_without_reply")
    if message_id is None:
        return None
    target = chat.messages.get(message_id) if isinstance(message_id, int) else None
    if target is None or target.deleted:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return target


def link_preview(ctx: CallContext) -> dict[str, Any] | None:
    options = ctx.params.get_json(
        "link_preview_options", error="can't parse link preview options JSON object"
    )
    if options is None:
        return {"is_disabled": True} if ctx.params.get_bool("disable_web_page_preview") else None
    if not isinstance(options, dict):
        raise bad_request("can't parse link preview options JSON object")
    return options

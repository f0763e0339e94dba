"""Bot API methods on files: sendPhoto, sendDocument, sendVoice, getFile."""

from __future__ import annotations

from typing import Any

from counseldesk.telegram.emulator import compose
from counseldesk.telegram.emulator.context import CallContext, Handler
from counseldesk.telegram.emulator.errors import bad_request
from counseldesk.telegram.emulator.media import MAX_DOWNLOAD_BYTES, MediaKind, StoredFile
from counseldesk.telegram.emulator.params import Upload


def _file(ctx: CallContext, kind: MediaKind) -> StoredFile:
    source = ctx.params.get_input_file(kind)
    if source is None:
        raise bad_request(f"there is no {kind} in the request")
    if isinstance(source, Upload):
        if not source.content:
            raise bad_request("file must be non-empty")
        return ctx.state.files.add(
            kind,
            source.content,
            file_name=source.filename,
            mime_type=source.content_type,
            duration=ctx.params.get_int("duration") or 0,
        )
    if source.startswith(("http://", "https://")):
        # Telegram would fetch the URL; the emulator stays on loopback and never does.
        raise bad_request("failed to get HTTP URL content")
    stored = ctx.state.files.get(source)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != kind:
        raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
    return stored


async def _send(ctx: CallContext, kind: MediaKind) -> dict[str, Any]:
    chat = ctx.state.chat_for_bot(ctx.chat_id())
    stored = _file(ctx, kind)
    caption = compose.caption(ctx)
    message = ctx.state.add_bot_message(
        chat,
        body=caption.text or None,
        entities=caption.entities,
        raw_body=caption.raw,
        parse_mode=caption.parse_mode,
        reply_markup=compose.reply_markup(ctx),
        media=stored,
        reply_to=compose.reply_target(ctx, chat),
    )
    return message.to_telegram()


async def send_photo(ctx: CallContext) -> dict[str, Any]:
    return await _send(ctx, "photo")


async def send_document(ctx: CallContext) -> dict[str, Any]:
    return await _send(ctx, "document")


async def send_voice(ctx: CallContext) -> dict[str, Any]:
    return await _send(ctx, "voice")


async def get_file(ctx: CallContext) -> dict[str, Any]:
    file_id = ctx.params.get_str("file_id")
    stored = ctx.state.files.get(file_id) if file_id else None
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return stored.to_file()


HANDLERS: dict[str, Handler] = {
    "sendPhoto": send_photo,
    "sendDocument": send_document,
    "sendVoice": send_voice,
    "getFile": get_file,
}

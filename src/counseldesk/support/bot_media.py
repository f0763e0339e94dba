"""What a student's Telegram message carries, as support.service takes it."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.enums import ContentType
from aiogram.types import Message

from counseldesk.support.service import Media


@dataclass(frozen=True)
class Incoming:
    body: str | None  # the text, or a media message's caption; exactly as typed
    media: Media | None

    @property
    def supported(self) -> bool:
        return bool(self.body) or self.media is not None


def read_message(message: Message) -> Incoming:
    """Text, photo, document or voice; anything else (a sticker, a video...) is unsupported.

    Telegram's file ids are stored, not the files: the dashboard fetches them when shown.
    """
    match message.content_type:
        case ContentType.TEXT:
            return Incoming(message.text, None)
        case ContentType.PHOTO if message.photo:
            largest = message.photo[-1]  # Telegram lists the sizes smallest first
            return Incoming(message.caption, Media("photo", largest.file_id, None, "image/jpeg"))
        case ContentType.DOCUMENT if message.document:
            doc = message.document
            return Incoming(
                message.caption, Media("document", doc.file_id, doc.file_name, doc.mime_type)
            )
        case ContentType.VOICE if message.voice:
            voice = message.voice
            return Incoming(
                message.caption,
                Media("voice", voice.file_id, None, voice.mime_type or "audio/ogg"),
            )
    # A sticker, video, location...: even with a caption, passing on only the caption would
    # silently lose what the student actually sent.
    return Incoming(None, None)

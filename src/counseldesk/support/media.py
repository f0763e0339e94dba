"""Student media (photos, documents, voice) for the dashboard, fetched from Telegram through
the server.

The browser never talks to Telegram (that would need the bot token). The server asks the Bot
API for the file (`getFile`), downloads it once into VAR_DIR/media-cache and serves it from
disk from then on: a file id always names the same bytes, so the cached copy never goes stale
and the browser may keep it for a year. `private`, because these are a student's files for
logged-in counselors only — no shared cache or CDN may keep them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNetworkError
from fastapi import FastAPI, Request

from counseldesk.config import Settings
from counseldesk.errors import CounseldeskError, NotFound
from counseldesk.support.models import SupportMessage
from counseldesk.telegram.bot_factory import create_bot

MEDIA_CACHE_DIR = "media-cache"
CACHE_CONTROL = "private, max-age=31536000, immutable"
DEFAULT_TYPES = {
    "photo": "image/jpeg",
    "voice": "audio/ogg",
    "document": "application/octet-stream",
}
GONE = "This file is no longer available from Telegram."


class TelegramUnavailable(CounseldeskError):
    """Telegram did not deliver the file (network trouble, an outage): try again later."""

    status_code = 502


def media_bot(request: Request) -> Bot:
    """The Bot that downloads files: the webhook's own when the app has one, else one made on
    first use and kept for the app's life (closed by `media_lifespan`)."""
    state = request.app.state
    telegram = getattr(state, "telegram", None)
    if telegram is not None:
        bot: Bot = telegram[0]
        return bot
    cached: Bot | None = getattr(state, "media_bot", None)
    if cached is None:
        cached = state.media_bot = create_bot(state.runtime.settings)
    return cached


@contextlib.asynccontextmanager
async def media_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    bot: Bot | None = getattr(app.state, "media_bot", None)
    if bot is not None:
        app.state.media_bot = None
        await bot.session.close()


def content_type(message: SupportMessage) -> str:
    return message.media_mime_type or DEFAULT_TYPES.get(
        message.media_kind or "", DEFAULT_TYPES["document"]
    )


def cache_path(settings: Settings, file_id: str) -> Path:
    # Hashed: file ids are long and may hold characters a file name should not.
    return settings.var_dir / MEDIA_CACHE_DIR / hashlib.sha256(file_id.encode()).hexdigest()


async def cached_file(settings: Settings, bot: Bot, file_id: str) -> Path:
    """The file's bytes on local disk, downloading them from Telegram the first time."""
    path = cache_path(settings, file_id)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        file = await bot.get_file(file_id)
    except TelegramBadRequest:
        raise NotFound(GONE) from None
    except (TelegramNetworkError, TelegramAPIError) as exc:
        raise TelegramUnavailable(f"Telegram did not hand out the file: {exc.message}") from None
    if not file.file_path:
        raise NotFound(GONE)
    # Written beside the final name and renamed: a reader sees the whole file or none, and two
    # requests downloading the same file at once each finish with a complete copy.
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        await bot.download_file(file.file_path, destination=partial)
        os.replace(partial, path)
    except aiohttp.ClientResponseError as exc:
        if exc.status in (400, 404):
            raise NotFound(GONE) from None
        raise TelegramUnavailable(f"Telegram answered {exc.status} for the file.") from None
    except (aiohttp.ClientError, TimeoutError):
        raise TelegramUnavailable("Telegram did not deliver the file; try again.") from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def response_headers() -> dict[str, str]:
    # nosniff: the browser must take the declared type, never guess HTML out of a "photo".
    return {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}

"""Creating the aiogram Bot: the real Bot API with a token, the built-in emulator without one."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from counseldesk.config import Settings


def create_bot(settings: Settings, api_url: str | None = None) -> Bot:
    """A Bot speaking HTML parse mode (the catalog escapes every value it fills in).

    `api_url` overrides where the Bot API lives (tests point it at their own emulator).
    """
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url or settings.bot_api_url))
    return Bot(
        token=settings.bot_token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )

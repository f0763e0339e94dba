"""Telegram's webhook: updates arrive here when WEBHOOK_URL is set."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from counseldesk.errors import NotFound, PermissionDenied
from counseldesk.web.deps import SettingsDep

log = logging.getLogger(__name__)

router = APIRouter()

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


@router.post("/telegram/webhook", include_in_schema=False)
async def telegram_webhook(request: Request, settings: SettingsDep) -> JSONResponse:
    telegram: tuple[Bot, Dispatcher] | None = getattr(request.app.state, "telegram", None)
    if telegram is None or settings.webhook_secret is None:
        raise NotFound("The Telegram webhook is not enabled on this server.")
    expected = settings.webhook_secret.get_secret_value()
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDenied("Wrong or missing Telegram secret token.")
    payload: dict[str, Any] = await request.json()
    bot, dispatcher = telegram
    # Handled before answering: a failure answers 500 and Telegram delivers the update again;
    # the dedupe row written with the handling makes any repeat of a handled update a no-op.
    await dispatcher.feed_webhook_update(bot, payload)
    return JSONResponse({"ok": True})

"""Sending one outbox row to Telegram and reading what its answer means for the row.

The distinction that matters is whether Telegram may have delivered the message:
- it answered with an error (4xx, 5xx, 429): nothing was delivered, so a retry is safe;
- the connection could not even be opened: nothing was sent, a retry is safe;
- the request went out and no answer came back (a timeout, a connection dropped mid-request, an
  answer we cannot read): the message may be on the student's screen. Sending it again risks a
  duplicate, and a duplicate to a student in distress is worse than a visible "failed, retry?"
  on the counselor's screen, so such a row ends FAILED with "delivery unknown" — the same rule the
  lease sweep applies to a worker that died mid-send.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import ForceReply, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove
from aiohttp import ClientConnectorError
from pydantic import ValidationError

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


class Verdict(enum.Enum):
    SENT = "sent"
    # Not delivered and worth another try later (5xx, no connection, our token refused).
    RETRY = "retry"
    # Telegram's flood control: pause everything for retry_after; the row did not fail.
    RATE_LIMITED = "rate_limited"
    # 403: the student blocked the bot or deleted their account.
    UNREACHABLE = "unreachable"
    # Telegram refused this message for good (400: bad HTML, chat not found...).
    REJECTED = "rejected"
    # The request may or may not have been delivered; never sent again automatically.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    verdict: Verdict
    message_id: int | None = None
    error: str | None = None
    retry_after: float = 0.0


def parse_markup(raw: dict[str, Any] | None) -> Markup | None:
    """The payload's reply_markup (Bot API JSON) as aiogram's model; ValueError when malformed."""
    if raw is None:
        return None
    kinds: list[tuple[str, type[Markup]]] = [
        ("inline_keyboard", InlineKeyboardMarkup),
        ("keyboard", ReplyKeyboardMarkup),
        ("remove_keyboard", ReplyKeyboardRemove),
        ("force_reply", ForceReply),
    ]
    for field, model in kinds:
        if field in raw:
            try:
                return model.model_validate(raw)
            except ValidationError as exc:
                raise ValueError(f"malformed reply_markup: {exc.errors()[0]['msg']}") from None
    raise ValueError("reply_markup is none of Telegram's four kinds")


async def send_payload(
    bot: Bot, chat_id: int, payload: dict[str, Any], *, send_timeout: float
) -> SendResult:
    """Send one notification's payload; every failure comes back as a verdict, none raises."""
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        return SendResult(Verdict.REJECTED, error="the notification has no text")
    try:
        markup = parse_markup(payload.get("reply_markup"))
    except ValueError as exc:
        return SendResult(Verdict.REJECTED, error=str(exc))
    try:
        async with asyncio.timeout(send_timeout):
            message = await bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup
            )
    except TimeoutError:
        return SendResult(Verdict.UNKNOWN, error="timed out while sending; delivery unknown")
    except TelegramAPIError as exc:
        return classify_error(exc)
    except Exception as exc:  # a bug or an unexpected answer: do not guess, do not resend
        log.exception("sending to chat %s failed unexpectedly", chat_id)
        return SendResult(Verdict.UNKNOWN, error=f"{type(exc).__name__}; delivery unknown")
    return SendResult(Verdict.SENT, message_id=message.message_id)


def classify_error(exc: TelegramAPIError) -> SendResult:
    if isinstance(exc, TelegramRetryAfter):
        return SendResult(
            Verdict.RATE_LIMITED,
            error=f"flood control: retry after {exc.retry_after} s",
            retry_after=float(exc.retry_after),
        )
    if isinstance(exc, TelegramForbiddenError):
        return SendResult(Verdict.UNREACHABLE, error=exc.message)
    if isinstance(exc, TelegramServerError):  # RestartingTelegram included
        return SendResult(Verdict.RETRY, error=exc.message)
    if isinstance(exc, TelegramUnauthorizedError | TelegramNotFound):
        # Our token or API URL is wrong: the message is fine, the configuration is not. Retrying
        # with backoff gives an operator the attempts' time to fix it.
        log.error("Telegram refused the bot's credentials: %s", exc.message)
        return SendResult(Verdict.RETRY, error=exc.message)
    if isinstance(exc, TelegramNetworkError):
        if isinstance(exc.__cause__, ClientConnectorError):
            return SendResult(Verdict.RETRY, error=exc.message)
        return SendResult(Verdict.UNKNOWN, error=f"{exc.message}; delivery unknown")
    # 400 (bad HTML, chat not found, text too long) and the rest: this message will never go.
    return SendResult(Verdict.REJECTED, error=exc.message)

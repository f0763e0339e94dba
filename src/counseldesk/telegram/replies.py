"""Replies to an update, held back until the update's transaction has committed.

A handler that registers a student and says "you're registered" must not say it when the
commit then fails. Handlers queue what they want to send; the unit-of-work middleware sends it
after commit and drops it on rollback.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    SendMessage,
    TelegramMethod,
)
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class Replies:
    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.pending: list[TelegramMethod[Any]] = []

    def send(self, text: str, markup: Markup | None = None) -> None:
        self.pending.append(SendMessage(chat_id=self.chat_id, text=text, reply_markup=markup))

    def edit(self, message_id: int, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Replace a menu message in place (pressing a button should not spam the chat)."""
        self.pending.append(
            EditMessageText(
                chat_id=self.chat_id, message_id=message_id, text=text, reply_markup=markup
            )
        )

    def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        self.pending.append(AnswerCallbackQuery(callback_query_id=callback_query_id, text=text))

    def show(
        self,
        query: CallbackQuery,
        text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        toast: str | None = None,
    ) -> None:
        """Answer a button press by replacing the message it was on (menus do not pile up)."""
        self.answer_callback(query.id, toast)
        if query.message is None:
            self.send(text, markup)
        else:
            self.edit(query.message.message_id, text, markup)

    async def flush(self, bot: Bot) -> None:
        pending, self.pending = self.pending, []
        for method in pending:
            try:
                await bot(method)
            except TelegramAPIError as exc:
                if isinstance(method, EditMessageText) and "not modified" in str(exc):
                    continue
                if isinstance(method, EditMessageText):
                    # The message may be too old to edit: send it as a new one instead.
                    await self._send_instead(bot, method)
                    continue
                log.warning(
                    "reply %s to chat %s failed: %s", method.__api_method__, self.chat_id, exc
                )

    async def _send_instead(self, bot: Bot, method: EditMessageText) -> None:
        if not method.text:
            return
        try:
            await bot(
                SendMessage(
                    chat_id=self.chat_id, text=method.text, reply_markup=method.reply_markup
                )
            )
        except TelegramAPIError as exc:
            log.warning("reply to chat %s failed: %s", self.chat_id, exc)

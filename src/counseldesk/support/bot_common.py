"""Small pieces the support handlers share: filters and showing a screen in place."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, TelegramObject

from counseldesk.students.models import Student
from counseldesk.telegram.replies import Replies

# Commands (/start, /menu, /cancel...) belong to the students router, whatever step a student is
# at in a support flow; typed text and media are ours.
NOT_COMMAND = ~F.text.startswith("/")


def is_registered(event: TelegramObject, student: Student | None = None) -> bool:
    """Support is for registered students; everyone else falls through to "register first"."""
    return student is not None


def is_stranger(event: TelegramObject, student: Student | None = None) -> bool:
    return student is None


def show(
    replies: Replies,
    query: CallbackQuery,
    text: str,
    markup: InlineKeyboardMarkup | None,
    *,
    toast: str | None = None,
) -> None:
    """Answer a button press by replacing the message it was on (menus do not pile up)."""
    replies.answer_callback(query.id, toast)
    if query.message is None:
        replies.send(text, markup)
    else:
        replies.edit(query.message.message_id, text, markup)

"""Keyboards the student sees; callback data as typed factories, never hand-built strings."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from counseldesk.i18n import t
from counseldesk.students.service import MAX_YEAR, MIN_YEAR


class MenuCallback(CallbackData, prefix="menu"):
    action: str


class YearCallback(CallbackData, prefix="reg_year"):
    year: int


def _button(text: str, action: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=MenuCallback(action=action).pack())


def main_menu(lang: str | None) -> InlineKeyboardMarkup:
    # Only features that exist are offered; each feature adds its row here when it lands.
    return InlineKeyboardMarkup(
        inline_keyboard=[
            # Actions handled by appointments/bot.py (appointments/keyboards.py MENU_*).
            [_button(t("appointments.bot.menu_book", lang), "book")],
            [_button(t("appointments.bot.menu_mine", lang), "appts")],
            [_button(t("support.menu_button", lang), "support")],
            [_button(t("menu.profile", lang), "profile")],
            [_button(t("menu.contact", lang), "contact"), _button(t("menu.help", lang), "help")],
        ]
    )


def back_to_menu(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_button(t("menu.back", lang), "home")]])


def years() -> InlineKeyboardMarkup:
    row = [
        InlineKeyboardButton(text=str(y), callback_data=YearCallback(year=y).pack())
        for y in range(MIN_YEAR, MAX_YEAR + 1)
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


def share_phone(lang: str | None) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=t("registration.share_phone_button", lang), request_contact=True)]
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
        is_persistent=True,
    )

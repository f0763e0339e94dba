"""Keyboards of the support conversations; callback data as typed factories.

Every callback carries ids only, never text, so it stays far below Telegram's 64-byte limit
(the longest, a reopen of ticket 2**63 - 1 from page 9999, packs to 36 bytes). The ids in it are
whatever the client sends: handlers look each one up as the pressing student's, never trust it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from counseldesk.i18n import t
from counseldesk.students.keyboards import MenuCallback
from counseldesk.support.models import SupportCategory

# The action of the main menu's Support button (students/keyboards.py main_menu).
MENU_ACTION = "support"
# CategoryCallback's id for "no topic".
NO_CATEGORY = 0


class SupportAction(enum.StrEnum):
    MENU = "menu"
    NEW = "new"
    LIST = "list"


class DraftAction(enum.StrEnum):
    SEND = "send"
    EDIT = "edit"
    CANCEL = "cancel"
    SUMMARY = "summary"
    EDIT_CATEGORY = "ecat"
    EDIT_SUBJECT = "esub"
    EDIT_BODY = "ebody"


class TicketAction(enum.StrEnum):
    OPEN = "open"
    CLOSE = "close"
    REOPEN = "reopen"


class SupportCallback(CallbackData, prefix="sup"):
    action: SupportAction
    page: int = 0


class CategoryCallback(CallbackData, prefix="supc"):
    category_id: int


class DraftCallback(CallbackData, prefix="supd"):
    action: DraftAction


class TicketCallback(CallbackData, prefix="supt"):
    action: TicketAction
    ticket_id: int
    page: int = 0  # the list page to go back to


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _main_menu_button(lang: str | None) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=t("menu.back", lang), callback_data=MenuCallback(action="home").pack()
    )


def support_menu(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("support.new_button", lang), SupportCallback(action=SupportAction.NEW))],
            [_button(t("support.list_button", lang), SupportCallback(action=SupportAction.LIST))],
            [_main_menu_button(lang)],
        ]
    )


def start_prompt(lang: str | None) -> InlineKeyboardMarkup:
    """Under the "nothing was passed on" prompt for a student with no active conversation."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t("support.chat.start_button", lang), SupportCallback(action=SupportAction.NEW)
                )
            ],
            [_button(t("support.list_button", lang), SupportCallback(action=SupportAction.LIST))],
            [_main_menu_button(lang)],
        ]
    )


def _cancel_row(lang: str | None) -> list[InlineKeyboardButton]:
    return [_button(t("support.cancel_button", lang), DraftCallback(action=DraftAction.CANCEL))]


def categories(items: Sequence[SupportCategory], lang: str | None) -> InlineKeyboardMarkup:
    rows = [[_button(c.name, CategoryCallback(category_id=c.id))] for c in items]
    rows.append(
        [_button(t("support.compose.skip_button", lang), CategoryCallback(category_id=NO_CATEGORY))]
    )
    rows.append(_cancel_row(lang))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def cancel_only(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[_cancel_row(lang)])


def confirm(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t("support.compose.send_button", lang), DraftCallback(action=DraftAction.SEND)
                ),
                _button(
                    t("support.compose.edit_button", lang), DraftCallback(action=DraftAction.EDIT)
                ),
            ],
            _cancel_row(lang),
        ]
    )


def what_to_edit(lang: str | None) -> InlineKeyboardMarkup:
    def edit(key: str, action: DraftAction) -> InlineKeyboardButton:
        return _button(t(f"support.compose.{key}", lang), DraftCallback(action=action))

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                edit("edit_category_button", DraftAction.EDIT_CATEGORY),
                edit("edit_subject_button", DraftAction.EDIT_SUBJECT),
                edit("edit_body_button", DraftAction.EDIT_BODY),
            ],
            [edit("back_to_summary_button", DraftAction.SUMMARY)],
        ]
    )


def after_open(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("support.list_button", lang), SupportCallback(action=SupportAction.LIST))],
            [_main_menu_button(lang)],
        ]
    )


def ticket_list(
    labels: Sequence[tuple[int, str]], *, page: int, has_next: bool, lang: str | None
) -> InlineKeyboardMarkup:
    """One button per (ticket id, label), then Previous/Next, New conversation and Back."""
    rows = [
        [_button(label, TicketCallback(action=TicketAction.OPEN, ticket_id=ticket_id, page=page))]
        for ticket_id, label in labels
    ]
    paging = []
    if page > 0:
        paging.append(
            _button(
                t("support.list.prev_button", lang),
                SupportCallback(action=SupportAction.LIST, page=page - 1),
            )
        )
    if has_next:
        paging.append(
            _button(
                t("support.list.next_button", lang),
                SupportCallback(action=SupportAction.LIST, page=page + 1),
            )
        )
    if paging:
        rows.append(paging)
    rows.append([_button(t("support.new_button", lang), SupportCallback(action=SupportAction.NEW))])
    rows.append(
        [_button(t("support.back_button", lang), SupportCallback(action=SupportAction.MENU))]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def ticket_view(
    ticket_id: int, *, is_closed: bool, page: int, lang: str | None
) -> InlineKeyboardMarkup:
    toggle = (
        _button(
            t("support.view.reopen_button", lang),
            TicketCallback(action=TicketAction.REOPEN, ticket_id=ticket_id, page=page),
        )
        if is_closed
        else _button(
            t("support.view.close_button", lang),
            TicketCallback(action=TicketAction.CLOSE, ticket_id=ticket_id, page=page),
        )
    )
    back = _button(
        t("support.view.back_to_list_button", lang),
        SupportCallback(action=SupportAction.LIST, page=page),
    )
    return InlineKeyboardMarkup(inline_keyboard=[[toggle], [back]])

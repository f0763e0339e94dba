"""Keyboards of the student's appointments in the bot; callback data as typed factories.

Callback data carries ids and numbers only: days as ordinals, times as epoch seconds. The longest
(a pick for appointment 2**63 - 1 at a 10-digit epoch) packs to well under Telegram's 64 bytes.
Whatever arrives is what the client sent: handlers look every id up as the pressing student's
and check every time against the free slots, never trust it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from counseldesk.i18n import t
from counseldesk.students.keyboards import MenuCallback

# The main menu's actions (students/keyboards.py main_menu).
MENU_BOOK = "book"
MENU_MINE = "appts"
# ApDays/ApSlots/ApPick's counselor id for "whoever is free first".
FIRST_AVAILABLE = 0
# The prefixes below all start with this, so one filter finds a stale or forged button of ours.
PREFIX_PATTERN = r"^ap[a-z]:"

SLOTS_PER_ROW = 4
DAYS_PER_ROW = 2


class CounselorsCallback(CallbackData, prefix="apc"):
    page: int = 0


class DaysCallback(CallbackData, prefix="apd"):
    counselor_id: int
    start: int = 0  # the day (ordinal) to list from; 0: the booking window's first day
    move: int = 0  # the appointment being rescheduled; 0: a new booking


class SlotsCallback(CallbackData, prefix="aps"):
    counselor_id: int
    day: int  # ordinal
    start: int = 0  # the days page to go back to
    move: int = 0
    offset: int = 0  # the first slot shown (a day of short slots has many)


class PickCallback(CallbackData, prefix="apk"):
    counselor_id: int
    at: int  # epoch seconds
    move: int = 0
    # 1: one of the "just taken" alternatives; the reason already given is kept.
    again: int = 0


class DraftAction(enum.StrEnum):
    SKIP = "skip"
    CONFIRM = "ok"
    CANCEL = "no"


class DraftCallback(CallbackData, prefix="apx"):
    action: DraftAction
    at: int = 0  # the time on the confirm screen: an older screen's Confirm books nothing


class ListCallback(CallbackData, prefix="apl"):
    past: int = 0
    page: int = 0


class ViewCallback(CallbackData, prefix="apv"):
    appointment_id: int
    past: int = 0  # the list to go back to
    page: int = 0


class AppointmentAction(enum.StrEnum):
    ASK_CANCEL = "ask"
    CANCEL = "cancel"


class ActionCallback(CallbackData, prefix="apa"):
    action: AppointmentAction
    appointment_id: int
    page: int = 0


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _main_menu_row(lang: str | None) -> list[InlineKeyboardButton]:
    return [_button(t("appointments.bot.main_menu_button", lang), MenuCallback(action="home"))]


def _rows(buttons: Sequence[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def back_to_menu(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[_main_menu_row(lang)])


def limit_reached(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("appointments.bot.menu_mine", lang), ListCallback())],
            _main_menu_row(lang),
        ]
    )


# --- booking --------------------------------------------------------------------------------------


def counselors(
    items: Sequence[tuple[int, str]], *, page: int, has_next: bool, lang: str | None
) -> InlineKeyboardMarkup:
    rows = [
        [
            _button(
                t("appointments.bot.counselors.first_available", lang),
                DaysCallback(counselor_id=FIRST_AVAILABLE),
            )
        ]
    ]
    rows += [[_button(name, DaysCallback(counselor_id=cid))] for cid, name in items]
    paging = []
    if page > 0:
        paging.append(
            _button(
                t("appointments.bot.counselors.prev_button", lang),
                CounselorsCallback(page=page - 1),
            )
        )
    if has_next:
        paging.append(
            _button(
                t("appointments.bot.counselors.next_button", lang),
                CounselorsCallback(page=page + 1),
            )
        )
    if paging:
        rows.append(paging)
    rows.append(_main_menu_row(lang))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _back_from_days(move: int, lang: str | None) -> InlineKeyboardButton:
    """Back from the days: to the counselors when booking, to the appointment when moving it."""
    back = t("appointments.bot.back_button", lang)
    if move:
        return _button(back, ViewCallback(appointment_id=move))
    return _button(back, CounselorsCallback())


def days(
    items: Sequence[tuple[int, str]],
    *,
    counselor_id: int,
    start: int,
    next_start: int | None,
    move: int,
    lang: str | None,
) -> InlineKeyboardMarkup:
    """One button per (day ordinal, label), Later when more days follow, Back."""
    buttons = [
        _button(
            label,
            SlotsCallback(counselor_id=counselor_id, day=ordinal, start=start, move=move),
        )
        for ordinal, label in items
    ]
    rows = _rows(buttons, DAYS_PER_ROW)
    if next_start is not None:
        rows.append(
            [
                _button(
                    t("appointments.bot.days.later_button", lang),
                    DaysCallback(counselor_id=counselor_id, start=next_start, move=move),
                )
            ]
        )
    rows.append([_back_from_days(move, lang)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def slots(
    items: Sequence[tuple[int, str]],
    *,
    counselor_id: int,
    day: int,
    start: int,
    move: int,
    later_offset: int | None,
    lang: str | None,
) -> InlineKeyboardMarkup:
    """One button per (epoch, time label), rows of four; Later times; Back to the days."""
    buttons = [
        _button(label, PickCallback(counselor_id=counselor_id, at=at, move=move))
        for at, label in items
    ]
    rows = _rows(buttons, SLOTS_PER_ROW)
    if later_offset is not None:
        rows.append(
            [
                _button(
                    t("appointments.bot.slots.later_button", lang),
                    SlotsCallback(
                        counselor_id=counselor_id,
                        day=day,
                        start=start,
                        move=move,
                        offset=later_offset,
                    ),
                )
            ]
        )
    rows.append(
        [
            _button(
                t("appointments.bot.back_button", lang),
                DaysCallback(counselor_id=counselor_id, start=start, move=move),
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def back_to_days(counselor_id: int, move: int, lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t("appointments.bot.confirm.other_days_button", lang),
                    DaysCallback(counselor_id=counselor_id, move=move),
                )
            ],
            [_back_from_days(move, lang)],
        ]
    )


def _cancel_draft_row(lang: str | None, move: int = 0) -> list[InlineKeyboardButton]:
    # Moving: say what stays, so nobody fears "Cancel" drops the appointment itself.
    key = "appointments.bot.keep_time_button" if move else "appointments.bot.cancel_button"
    return [_button(t(key, lang), DraftCallback(action=DraftAction.CANCEL))]


def reason(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t("appointments.bot.reason.skip_button", lang),
                    DraftCallback(action=DraftAction.SKIP),
                )
            ],
            _cancel_draft_row(lang),
        ]
    )


def confirm(at: int, counselor_id: int, move: int, lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t("appointments.bot.confirm.confirm_button", lang),
                    DraftCallback(action=DraftAction.CONFIRM, at=at),
                )
            ],
            [
                _button(
                    t("appointments.bot.confirm.other_time_button", lang),
                    DaysCallback(counselor_id=counselor_id, move=move),
                )
            ],
            _cancel_draft_row(lang, move),
        ]
    )


def alternatives(
    items: Sequence[tuple[int, str]], *, counselor_id: int, move: int, lang: str | None
) -> InlineKeyboardMarkup:
    """The nearest free times after a slot was taken; picking one goes back to the confirm."""
    rows = [
        [_button(label, PickCallback(counselor_id=counselor_id, at=at, move=move, again=1))]
        for at, label in items
    ]
    rows.append(
        [
            _button(
                t("appointments.bot.confirm.other_days_button", lang),
                DaysCallback(counselor_id=counselor_id, move=move),
            )
        ]
    )
    rows.append(_cancel_draft_row(lang, move))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def after_booking(lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("appointments.bot.menu_mine", lang), ListCallback())],
            _main_menu_row(lang),
        ]
    )


# --- my appointments ------------------------------------------------------------------------------


def appointment_list(
    items: Sequence[tuple[int, str]], *, past: bool, page: int, has_next: bool, lang: str | None
) -> InlineKeyboardMarkup:
    flag = int(past)
    rows = [
        [_button(label, ViewCallback(appointment_id=aid, past=flag, page=page))]
        for aid, label in items
    ]
    paging = []
    if page > 0:
        paging.append(
            _button(
                t("appointments.bot.mine.prev_button", lang),
                ListCallback(past=flag, page=page - 1),
            )
        )
    if has_next:
        paging.append(
            _button(
                t("appointments.bot.mine.next_button", lang),
                ListCallback(past=flag, page=page + 1),
            )
        )
    if paging:
        rows.append(paging)
    if past:
        rows.append([_button(t("appointments.bot.mine.upcoming_button", lang), ListCallback())])
    else:
        rows.append([_button(t("appointments.bot.mine.past_button", lang), ListCallback(past=1))])
        rows.append([_button(t("appointments.bot.menu_book", lang), CounselorsCallback())])
    rows.append(_main_menu_row(lang))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def appointment_view(
    appointment_id: int, *, changeable: bool, past: bool, page: int, lang: str | None
) -> InlineKeyboardMarkup:
    rows = []
    if changeable:
        rows.append(
            [
                _button(
                    t("appointments.bot.view.reschedule_button", lang),
                    DaysCallback(counselor_id=FIRST_AVAILABLE, move=appointment_id),
                ),
                _button(
                    t("appointments.bot.view.cancel_button", lang),
                    ActionCallback(
                        action=AppointmentAction.ASK_CANCEL,
                        appointment_id=appointment_id,
                        page=page,
                    ),
                ),
            ]
        )
    rows.append(
        [
            _button(
                t("appointments.bot.mine.back_to_list_button", lang),
                ListCallback(past=int(past), page=page),
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def ask_cancel(appointment_id: int, page: int, lang: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t("appointments.bot.view.yes_cancel_button", lang),
                    ActionCallback(
                        action=AppointmentAction.CANCEL, appointment_id=appointment_id, page=page
                    ),
                ),
                _button(
                    t("appointments.bot.view.no_keep_button", lang),
                    ViewCallback(appointment_id=appointment_id, page=page),
                ),
            ]
        ]
    )

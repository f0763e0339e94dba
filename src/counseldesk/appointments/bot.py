"""The student's appointments in the bot: booking (bot_booking.py, then bot_confirm.py) and
their own appointments (bot_mine.py). This module assembles the router.

It is included before the support router and takes typed messages only in its own state (the
reason of a booking), so whatever else a student types still reaches the support chat.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter, or_f
from aiogram.types import CallbackQuery
from aiogram.utils.magic_filter import MagicFilter

from counseldesk.appointments import bot_booking, bot_confirm, bot_mine
from counseldesk.appointments.bot_state import Booking
from counseldesk.appointments.keyboards import (
    MENU_BOOK,
    MENU_MINE,
    PREFIX_PATTERN,
    ActionCallback,
    CounselorsCallback,
    DaysCallback,
    DraftAction,
    DraftCallback,
    ListCallback,
    PickCallback,
    SlotsCallback,
    ViewCallback,
)
from counseldesk.i18n import t
from counseldesk.students.bot_filters import is_registered, is_stranger
from counseldesk.students.keyboards import MenuCallback
from counseldesk.support import bot_compose
from counseldesk.support.bot_state import Composing
from counseldesk.telegram.replies import Replies

OURS: MagicFilter = F.data.regexp(PREFIX_PATTERN)


async def register_first(query: CallbackQuery, lang: str | None, replies: Replies) -> None:
    replies.answer_callback(query.id, t("common.register_first", lang))


def create_router() -> Router:
    """A fresh router per dispatcher (aiogram attaches a router to one dispatcher only)."""
    members = Router(name="appointments.members")
    members.message.filter(is_registered)
    members.callback_query.filter(is_registered)
    cb, msg = members.callback_query, members.message
    reason_step = StateFilter(Booking.reason)

    # Opening one of our screens half-way through a new support conversation drops that draft,
    # as support's own screens do (else the next thing typed would become its subject).
    cb.register(
        bot_compose.abandon,
        StateFilter(Composing),
        or_f(OURS, MenuCallback.filter(F.action.in_({MENU_BOOK, MENU_MINE}))),
    )
    # Likewise, any other button or command while the reason is asked drops the booking.
    cb.register(bot_confirm.leave_reason, reason_step, ~DraftCallback.filter())
    msg.register(bot_confirm.cancel_command, reason_step, Command("cancel"))
    msg.register(bot_confirm.leave_reason, reason_step, F.text.startswith("/"))
    msg.register(bot_confirm.got_reason, reason_step)

    cb.register(bot_booking.start, MenuCallback.filter(F.action == MENU_BOOK))
    cb.register(bot_booking.counselors, CounselorsCallback.filter())
    cb.register(bot_booking.days, DaysCallback.filter())
    cb.register(bot_booking.slots, SlotsCallback.filter())
    cb.register(bot_booking.pick, PickCallback.filter())
    cb.register(
        bot_confirm.skip_reason, reason_step, DraftCallback.filter(F.action == DraftAction.SKIP)
    )
    cb.register(bot_confirm.confirm, DraftCallback.filter(F.action == DraftAction.CONFIRM))
    cb.register(bot_confirm.cancel, DraftCallback.filter(F.action == DraftAction.CANCEL))

    cb.register(bot_mine.menu_entry, MenuCallback.filter(F.action == MENU_MINE))
    cb.register(bot_mine.appointment_list, ListCallback.filter())
    cb.register(bot_mine.view, ViewCallback.filter())
    cb.register(bot_mine.action, ActionCallback.filter())
    # A button of a step that is over (Skip pressed twice), or data no button of ours packs.
    cb.register(bot_confirm.stale, OURS)

    strangers = Router(name="appointments.strangers")
    strangers.callback_query.register(register_first, is_stranger, OURS)

    router = Router(name="appointments")
    router.include_routers(members, strangers)
    return router

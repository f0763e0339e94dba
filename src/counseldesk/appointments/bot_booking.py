"""Booking an appointment, and moving one: the counselor, the day, the time.

Every screen offers only what appointments.slots says is free right now, and every press is
checked again. After the time come the reason and the confirm (bot_confirm.py).
"""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import bot_common, bot_render, bot_views, keyboards, service
from counseldesk.appointments.bot_state import Booking, Draft, get_draft, save_draft
from counseldesk.appointments.formatting import format_day, format_when
from counseldesk.appointments.keyboards import (
    CounselorsCallback,
    DaysCallback,
    PickCallback,
    SlotsCallback,
)
from counseldesk.appointments.slots import BookingWindow, free_days, free_slots_on
from counseldesk.config import Settings
from counseldesk.i18n import t
from counseldesk.students.models import Student
from counseldesk.telegram.replies import Replies

COUNSELORS_PER_PAGE = 6
DAYS_PER_PAGE = 8
SLOTS_PER_PAGE = 24  # six rows of four: a day of 10-minute slots would pass Telegram's 100 buttons


# --- counselor ----------------------------------------------------------------------------------


async def _counselors_screen(
    query: CallbackQuery,
    page: int,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    if await bot_common.limit_reached(session, student, settings):
        text = t("appointments.bot.limit_reached", lang, limit=settings.appointment_max_upcoming)
        replies.show(query, text, keyboards.limit_reached(lang))
        return
    page = max(page, 0)
    items, has_next = await bot_views.bookable_counselors(
        session, offset=page * COUNSELORS_PER_PAGE, limit=COUNSELORS_PER_PAGE
    )
    if not items and page > 0:  # past the end (the list shrank, or forged data): first page
        page = 0
        items, has_next = await bot_views.bookable_counselors(
            session, offset=0, limit=COUNSELORS_PER_PAGE
        )
    if not items:
        replies.show(query, t("appointments.bot.no_counselors", lang), keyboards.back_to_menu(lang))
        return
    replies.show(
        query,
        t("appointments.bot.counselors.title", lang),
        keyboards.counselors(items, page=page, has_next=has_next, lang=lang),
    )


async def start(
    query: CallbackQuery,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    """The main menu's Book appointment."""
    await _counselors_screen(query, 0, session, student, settings, lang, replies)


async def counselors(
    query: CallbackQuery,
    callback_data: CounselorsCallback,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    await _counselors_screen(query, callback_data.page, session, student, settings, lang, replies)


# --- day and time -------------------------------------------------------------------------------


async def days(
    query: CallbackQuery,
    callback_data: DaysCallback,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    window = BookingWindow.of(settings)
    move = callback_data.move
    counselor_id = callback_data.counselor_id
    if move:
        moving = await bot_common.movable(query, session, student, move, window, lang, replies)
        if moving is None:
            return
        counselor_id = moving.counselor_id  # a move stays with the same counselor
        name = await bot_views.counselor_name(session, counselor_id) or ""
        title = t(
            "appointments.bot.days.title_move",
            lang,
            who=name,
            when=format_when(moving.starts_at, window.tz),
        )
    else:
        who = await bot_common.who(session, counselor_id, lang)
        if who is None:
            replies.answer_callback(query.id, t("appointments.bot.stale", lang))
            return
        title = t("appointments.bot.days.title", lang, who=who)
    first = bot_common.day(callback_data.start)
    found, next_start = await free_days(
        session,
        window,
        counselor_id=counselor_id or None,
        start=first,
        limit=DAYS_PER_PAGE,
    )
    if not found:
        key = "none_later" if first is not None else "none"
        title += "\n" + t(
            f"appointments.bot.days.{key}", lang, days=settings.appointment_booking_days
        )
    markup = keyboards.days(
        bot_render.day_buttons(found, lang),
        counselor_id=counselor_id,
        start=callback_data.start if first is not None else 0,
        next_start=next_start.toordinal() if next_start is not None else None,
        move=move,
        lang=lang,
    )
    replies.show(query, title, markup)


async def slots(
    query: CallbackQuery,
    callback_data: SlotsCallback,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    window = BookingWindow.of(settings)
    day = bot_common.day(callback_data.day)
    counselor_id = callback_data.counselor_id
    move = callback_data.move
    if day is None:
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    if move:
        moving = await bot_common.movable(query, session, student, move, window, lang, replies)
        if moving is None:
            return
        counselor_id = moving.counselor_id
    who = await bot_common.who(session, counselor_id, lang)
    if who is None:
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    free = await free_slots_on(session, window, day, counselor_id=counselor_id or None)
    offset = min(max(callback_data.offset, 0), max(len(free) - 1, 0))
    shown = free[offset : offset + SLOTS_PER_PAGE]
    later = offset + SLOTS_PER_PAGE if len(free) > offset + SLOTS_PER_PAGE else None
    key = "title" if shown else "none"
    markup = keyboards.slots(
        bot_render.slot_buttons(shown, window.tz),
        counselor_id=counselor_id,
        day=callback_data.day,
        start=callback_data.start,
        move=move,
        later_offset=later,
        lang=lang,
    )
    replies.show(
        query,
        t(f"appointments.bot.slots.{key}", lang, who=who, day=format_day(day)),
        markup,
    )


async def pick(
    query: CallbackQuery,
    callback_data: PickCallback,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    """A time was chosen: ask for the reason (a new booking) or straight to the confirm."""
    window = BookingWindow.of(settings)
    starts_at = bot_common.instant(callback_data.at)
    counselor_id = callback_data.counselor_id
    move = callback_data.move
    if starts_at is None:
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    moving = None
    if move:
        moving = await bot_common.movable(query, session, student, move, window, lang, replies)
        if moving is None:
            return
        counselor_id = moving.counselor_id
    if await bot_common.who(session, counselor_id, lang) is None:
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    if starts_at < window.earliest:  # an old screen's time that has passed, or a forged one
        replies.show(
            query,
            t("appointments.bot.slots.gone", lang),
            keyboards.back_to_days(counselor_id, move, lang),
        )
        return
    day = starts_at.astimezone(window.tz).date()
    free = await free_slots_on(session, window, day, counselor_id=counselor_id or None)
    if all(slot.starts_at != starts_at for slot in free):
        await bot_common.show_taken(
            query, session, window, starts_at, counselor_id, move, None, lang, replies
        )
        return
    previous = await get_draft(state)
    reason = None
    if (
        callback_data.again
        and previous is not None
        and (previous.counselor_id, previous.move) == (counselor_id, move)
    ):
        reason = previous.reason  # an alternative to a taken time: the reason still holds
    draft = Draft(counselor_id=counselor_id, at=callback_data.at, move=move, reason=reason)
    if moving is None and reason is None:
        await save_draft(state, draft, Booking.reason)
        replies.show(
            query,
            t("appointments.bot.reason.ask", lang, limit=service.MAX_REASON),
            keyboards.reason(lang),
        )
        return
    await save_draft(state, draft)
    text, markup = await bot_common.confirm_screen(session, settings, draft, moving, lang)
    replies.show(query, text, markup)

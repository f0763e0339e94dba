"""Pieces the booking screens share: reading what a button carries, the checks every step
repeats (a time may be taken, an appointment may have changed, while a screen sits in the chat),
the "just taken" screen and the confirm screen."""

from __future__ import annotations

from datetime import UTC, date, datetime

from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import bot_render, bot_views, keyboards, service
from counseldesk.appointments.bot_state import Draft
from counseldesk.appointments.formatting import format_when
from counseldesk.appointments.keyboards import FIRST_AVAILABLE
from counseldesk.appointments.models import Appointment
from counseldesk.appointments.slots import BookingWindow, FreeSlot, nearest_free
from counseldesk.config import Settings
from counseldesk.errors import NotFound
from counseldesk.i18n import t
from counseldesk.students.models import Student
from counseldesk.telegram.replies import Replies

# --- reading what a button carries ----------------------------------------------------------------


def day(ordinal: int) -> date | None:
    try:
        return date.fromordinal(ordinal) if ordinal > 0 else None
    except (ValueError, OverflowError):
        return None


def instant(epoch: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (ValueError, OverflowError, OSError):
        return None


async def limit_reached(session: AsyncSession, student: Student, settings: Settings) -> bool:
    """A hint before the student picks anything; do_book enforces the limit itself."""
    return await service.at_booking_limit(session, settings, student.id, datetime.now(UTC))


async def movable(
    query: CallbackQuery,
    session: AsyncSession,
    student: Student,
    appointment_id: int,
    window: BookingWindow,
    lang: str | None,
    replies: Replies,
) -> Appointment | None:
    """The student's appointment being rescheduled, if it still can be; else says why."""
    try:
        appointment = await service.get_student_appointment(session, student, appointment_id)
    except NotFound:  # someone else's (a forged button) or gone
        replies.answer_callback(query.id, t("appointments.bot.not_found", lang))
        return None
    if not service.student_may_change(appointment, window.now):
        replies.answer_callback(query.id, t("appointments.bot.confirm.not_changeable", lang))
        return None
    return appointment


async def who(session: AsyncSession, counselor_id: int, lang: str | None) -> str | None:
    """The counselor's name for the screens; None for an unknown id (a forged button)."""
    if counselor_id == FIRST_AVAILABLE:
        return bot_render.who(None, lang)
    return await bot_views.counselor_name(session, counselor_id)


async def show_taken(
    query: CallbackQuery,
    session: AsyncSession,
    window: BookingWindow,
    starts_at: datetime,
    counselor_id: int,
    move: int,
    alternatives: list[FreeSlot] | None,
    lang: str | None,
    replies: Replies,
) -> None:
    """The "just taken" screen with the nearest free times (the service's, or looked up here).
    The draft stays, so picking one of them goes back to the confirm with the reason kept."""
    if alternatives is None:
        alternatives = await nearest_free(
            session, window, max(starts_at, window.earliest), counselor_id=counselor_id or None
        )
    when = format_when(starts_at, window.tz)
    key = "taken" if alternatives else "taken_none"
    replies.show(
        query,
        t(f"appointments.bot.confirm.{key}", lang, when=when),
        keyboards.alternatives(
            bot_render.alternative_buttons(alternatives, window.tz, lang),
            counselor_id=counselor_id,
            move=move,
            lang=lang,
        ),
    )


async def confirm_screen(
    session: AsyncSession,
    settings: Settings,
    draft: Draft,
    moving: Appointment | None,
    lang: str | None,
) -> tuple[str, InlineKeyboardMarkup]:
    markup = keyboards.confirm(draft.at, draft.counselor_id, draft.move, lang)
    name = bot_render.who(
        await bot_views.counselor_name(session, draft.counselor_id)
        if draft.counselor_id != FIRST_AVAILABLE
        else None,
        lang,
    )
    if moving is not None:
        text = bot_render.confirm_move(
            counselor=name,
            old=moving.starts_at,
            starts_at=draft.starts_at,
            tz=settings.tz,
            lang=lang,
        )
    else:
        text = bot_render.confirm(
            counselor=name,
            starts_at=draft.starts_at,
            reason=draft.reason or "",
            tz=settings.tz,
            lang=lang,
        )
    return text, markup

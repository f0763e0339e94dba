"""The end of a booking or a move: the reason (the one typed step), the confirm, leaving.

The service makes the booking and has the last word: a slot taken meanwhile comes back as
SlotTaken with the nearest free times, which the student can take instead without starting over;
its other refusals are told in the student's words, and nothing changes.
"""

from __future__ import annotations

from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import bot_common, bot_render, keyboards, service
from counseldesk.appointments.bot_state import end_draft, get_draft, save_draft
from counseldesk.appointments.formatting import format_when
from counseldesk.appointments.keyboards import DraftCallback
from counseldesk.appointments.service import SlotTaken
from counseldesk.appointments.slots import BookingWindow
from counseldesk.config import Settings
from counseldesk.errors import InvalidInput, NotFound
from counseldesk.i18n import t
from counseldesk.students import keyboards as student_keyboards
from counseldesk.students.models import Student
from counseldesk.telegram.replies import Replies

# --- reason and confirm -------------------------------------------------------------------------


async def got_reason(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    draft = await get_draft(state)
    if draft is None:  # the state outlived its data (an older version's): start over
        await end_draft(state)
        replies.send(t("appointments.bot.stale", lang), keyboards.back_to_menu(lang))
        return
    if message.text is None:
        replies.send(t("appointments.bot.reason.not_text", lang), keyboards.reason(lang))
        return
    try:
        reason = service.check_reason(message.text)
    except InvalidInput:
        replies.send(
            t("appointments.bot.reason.too_long", lang, limit=service.MAX_REASON),
            keyboards.reason(lang),
        )
        return
    draft = draft.with_(reason=reason)
    await save_draft(state, draft)
    text, markup = await bot_common.confirm_screen(session, settings, draft, None, lang)
    replies.send(text, markup)


async def skip_reason(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    draft = await get_draft(state)
    if draft is None:
        await end_draft(state)
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    draft = draft.with_(reason="")
    await save_draft(state, draft)
    text, markup = await bot_common.confirm_screen(session, settings, draft, None, lang)
    replies.show(query, text, markup)


async def confirm(
    query: CallbackQuery,
    callback_data: DraftCallback,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    draft = await get_draft(state)
    if (
        draft is None
        or draft.at != callback_data.at  # an older confirm screen than the newest pick
        or (draft.reason is None and not draft.move)
    ):
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    window = BookingWindow.of(settings)
    try:
        if draft.move:
            appointment = await service.do_reschedule_by_student(
                session, settings, student, draft.move, starts_at=draft.starts_at, now=window.now
            )
        else:
            appointment = await service.do_book(
                session,
                settings,
                student,
                counselor_id=draft.counselor_id or None,
                starts_at=draft.starts_at,
                reason=draft.reason,
                now=window.now,
            )
    except SlotTaken as exc:  # the draft stays: an alternative goes back to this confirm
        await bot_common.show_taken(
            query,
            session,
            window,
            draft.starts_at,
            draft.counselor_id,
            draft.move,
            exc.alternatives,
            lang,
            replies,
        )
        return
    except NotFound:
        await end_draft(state)
        replies.show(query, t("appointments.bot.not_found", lang), keyboards.after_booking(lang))
        return
    except InvalidInput:  # moving to the time it already has (a forged button)
        replies.show(
            query,
            t("appointments.bot.confirm.same_time", lang),
            keyboards.back_to_days(draft.counselor_id, draft.move, lang),
        )
        return
    except service.NotChangeable:
        await end_draft(state)
        replies.show(
            query, t("appointments.bot.confirm.not_changeable", lang), keyboards.after_booking(lang)
        )
        return
    except service.BookingLimitReached:
        await end_draft(state)
        text = t("appointments.bot.limit_reached", lang, limit=settings.appointment_max_upcoming)
        replies.show(query, text, keyboards.limit_reached(lang))
        return
    except service.StudentBusy:
        replies.show(
            query,
            t("appointments.bot.double_booked", lang),
            keyboards.back_to_days(draft.counselor_id, draft.move, lang),
        )
        return
    await end_draft(state)
    who = await service.parties(session, appointment)
    key = "moved" if draft.move else "booked"
    text = t(
        f"appointments.bot.confirm.{key}",
        lang,
        counselor=who.counselor.full_name,
        when=format_when(appointment.starts_at, settings.tz),
    ) + bot_render.reminders(settings.reminder_offsets, lang)
    replies.show(query, text, keyboards.after_booking(lang))


# --- leaving ------------------------------------------------------------------------------------


async def cancel(
    query: CallbackQuery, state: FSMContext, lang: str | None, replies: Replies
) -> None:
    draft = await get_draft(state)
    if draft is None:  # the booking this button belonged to is over (booked, or dropped)
        replies.answer_callback(query.id, t("appointments.bot.stale", lang))
        return
    await end_draft(state)
    if draft.move:
        replies.show(
            query,
            t("appointments.bot.confirm.cancelled_move", lang),
            keyboards.after_booking(lang),
        )
        return
    text = t("appointments.bot.confirm.cancelled", lang) + "\n\n" + t("menu.title", lang)
    replies.show(query, text, student_keyboards.main_menu(lang))


async def cancel_command(
    message: Message, state: FSMContext, lang: str | None, replies: Replies
) -> None:
    """/cancel at the reason step drops the booking only (other features' data stays)."""
    await end_draft(state)
    text = t("appointments.bot.confirm.cancelled", lang) + "\n\n" + t("menu.title", lang)
    replies.send(text, student_keyboards.main_menu(lang))


async def leave_reason(event: object, state: FSMContext) -> None:
    """Another button or command while the reason is asked: drop the booking, let it run (the
    next thing typed must not silently become a reason)."""
    await end_draft(state)
    raise SkipHandler


async def stale(query: CallbackQuery, lang: str | None, replies: Replies) -> None:
    replies.answer_callback(query.id, t("appointments.bot.stale", lang))

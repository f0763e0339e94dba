"""The student's own appointments: upcoming and past lists, one appointment, cancelling it.

Rescheduling starts here (the Reschedule button) and runs through bot_booking's days, times and
confirm with the appointment's id in every button.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import CallbackQuery
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import bot_render, bot_views, keyboards, service
from counseldesk.appointments.formatting import format_when
from counseldesk.appointments.keyboards import (
    ActionCallback,
    AppointmentAction,
    ListCallback,
    ViewCallback,
)
from counseldesk.appointments.models import Appointment
from counseldesk.config import Settings
from counseldesk.errors import Conflict, NotFound
from counseldesk.i18n import t
from counseldesk.students.models import Student
from counseldesk.telegram.replies import Replies

PAGE_SIZE = 5


async def _list_screen(
    query: CallbackQuery,
    *,
    past: bool,
    page: int,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    page = max(page, 0)
    items, has_next = await service.list_student_appointments(
        session, student, upcoming=not past, offset=page * PAGE_SIZE, limit=PAGE_SIZE
    )
    if not items and page > 0:  # past the end (the list shrank, or forged data): first page
        page = 0
        items, has_next = await service.list_student_appointments(
            session, student, upcoming=not past, offset=0, limit=PAGE_SIZE
        )
    kind = "past" if past else "upcoming"
    if not items:
        text = t(f"appointments.bot.mine.{kind}_empty", lang)
    elif page == 0 and not has_next:  # one page: no page number to show
        text = t(f"appointments.bot.mine.{kind}_title_all", lang)
    else:
        text = t(f"appointments.bot.mine.{kind}_title", lang, page=page + 1)
    labels = [
        (appointment.id, bot_render.list_label(appointment, name, settings.tz, lang))
        for appointment, name in items
    ]
    replies.show(
        query,
        text,
        keyboards.appointment_list(labels, past=past, page=page, has_next=has_next, lang=lang),
    )


async def menu_entry(
    query: CallbackQuery,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    """The main menu's My appointments: the upcoming ones first."""
    await _list_screen(
        query,
        past=False,
        page=0,
        session=session,
        student=student,
        settings=settings,
        lang=lang,
        replies=replies,
    )


async def appointment_list(
    query: CallbackQuery,
    callback_data: ListCallback,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    await _list_screen(
        query,
        past=bool(callback_data.past),
        page=callback_data.page,
        session=session,
        student=student,
        settings=settings,
        lang=lang,
        replies=replies,
    )


async def _show_view(
    query: CallbackQuery,
    appointment: Appointment,
    *,
    past: bool,
    page: int,
    session: AsyncSession,
    settings: Settings,
    lang: str | None,
    replies: Replies,
    toast: str | None = None,
) -> None:
    name = await bot_views.counselor_name(session, appointment.counselor_id) or ""
    changeable = service.student_may_change(appointment, datetime.now(UTC))
    replies.show(
        query,
        bot_render.appointment(appointment, name, settings.tz, lang),
        keyboards.appointment_view(
            appointment.id, changeable=changeable, past=past, page=page, lang=lang
        ),
        toast=toast,
    )


async def view(
    query: CallbackQuery,
    callback_data: ViewCallback,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    try:
        appointment = await service.get_student_appointment(
            session, student, callback_data.appointment_id
        )
    except NotFound:  # someone else's (a forged button) or gone: show nothing of it
        replies.answer_callback(query.id, t("appointments.bot.not_found", lang))
        return
    await _show_view(
        query,
        appointment,
        past=bool(callback_data.past),
        page=callback_data.page,
        session=session,
        settings=settings,
        lang=lang,
        replies=replies,
    )


async def action(
    query: CallbackQuery,
    callback_data: ActionCallback,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    """Cancel: first "are you sure?", then the cancellation (kept, with status canceled)."""
    try:
        appointment = await service.get_student_appointment(
            session, student, callback_data.appointment_id
        )
    except NotFound:
        replies.answer_callback(query.id, t("appointments.bot.not_found", lang))
        return
    page = callback_data.page
    if not service.student_may_change(appointment, datetime.now(UTC)):
        await _show_view(
            query,
            appointment,
            past=False,
            page=page,
            session=session,
            settings=settings,
            lang=lang,
            replies=replies,
            toast=t("appointments.bot.confirm.not_changeable", lang),
        )
        return
    if callback_data.action is AppointmentAction.ASK_CANCEL:
        name = await bot_views.counselor_name(session, appointment.counselor_id) or ""
        text = t(
            "appointments.bot.view.ask_cancel",
            lang,
            counselor=name,
            when=format_when(appointment.starts_at, settings.tz),
        )
        replies.show(query, text, keyboards.ask_cancel(appointment.id, page, lang))
        return
    try:
        appointment = await service.do_cancel_by_student(session, settings, student, appointment.id)
        toast = t("appointments.bot.view.canceled", lang)
    except Conflict:  # it started, or the counselor changed it, since the check above
        toast = t("appointments.bot.confirm.not_changeable", lang)
    await _show_view(
        query,
        appointment,
        past=False,
        page=page,
        session=session,
        settings=settings,
        lang=lang,
        replies=replies,
        toast=toast,
    )

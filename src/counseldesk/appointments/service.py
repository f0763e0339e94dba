"""The rules of appointments, shared by the bot, the dashboard and the JSON API.

Booking only ever takes a slot the availability offers; the database's exclusion constraint then
decides races, so two students can never hold the same counselor time. Every change keeps the
reminders in step, emits a live event for the dashboards (published after commit) and, when the
counselor made it, tells the student through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.formatting import format_when
from counseldesk.appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    CanceledBy,
)
from counseldesk.appointments.reminders import do_reschedule_reminders
from counseldesk.appointments.slots import BookingWindow, FreeSlot, free_slots_on, nearest_free
from counseldesk.config import Settings
from counseldesk.errors import Conflict, InvalidInput, NotFound
from counseldesk.i18n import t
from counseldesk.realtime.events import emit
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.telegram.outbox import do_enqueue

MAX_REASON = 500
ALTERNATIVES = 3  # free slots offered when the one asked for is taken
NOTICE_KIND = "appointment_update"
_COUNSELOR_OVERLAP = "ex_appointments_counselor_time"
_STUDENT_OVERLAP = "ex_appointments_student_time"


class SlotTaken(Conflict):
    """The time asked for is not free (any more); `alternatives` are the nearest free slots."""

    def __init__(self, message: str, alternatives: list[FreeSlot]) -> None:
        super().__init__(message)
        self.alternatives = alternatives


class BookingLimitReached(Conflict):
    """The student holds the most upcoming appointments one student may."""


class StudentBusy(Conflict):
    """The student has another appointment at that time."""


class NotChangeable(Conflict):
    """The appointment is over, canceled or started: it can no longer be canceled or moved."""


@dataclass(frozen=True)
class Parties:
    student: Student
    counselor: Counselor


def student_may_change(appointment: Appointment, now: datetime) -> bool:
    """Whether the student may still cancel or move it: active, and not yet started."""
    return appointment.status in ACTIVE_STATUSES and appointment.starts_at > now


def check_reason(text: str | None, *, required: bool = False) -> str:
    reason = (text or "").strip()
    if required and len(reason) < 3:
        raise InvalidInput("Please give a reason (at least 3 characters).")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"A reason has at most {MAX_REASON} characters.")
    return reason


# --- reading ------------------------------------------------------------------------------------


async def get_appointment(
    session: AsyncSession, appointment_id: int, *, for_update: bool = False
) -> Appointment:
    query = select(Appointment).where(Appointment.id == appointment_id)
    if for_update:
        query = query.with_for_update()
    appointment = await session.scalar(query)
    if appointment is None:
        raise NotFound(f"There is no appointment {appointment_id}.")
    return appointment


async def get_student_appointment(
    session: AsyncSession, student: Student, appointment_id: int, *, for_update: bool = False
) -> Appointment:
    appointment = await get_appointment(session, appointment_id, for_update=for_update)
    if appointment.student_id != student.id:  # someone else's id (a forged button): not found
        raise NotFound(f"There is no appointment {appointment_id}.")
    return appointment


async def parties(session: AsyncSession, appointment: Appointment) -> Parties:
    student = await session.get(Student, appointment.student_id)
    counselor = await session.get(Counselor, appointment.counselor_id)
    assert student is not None and counselor is not None  # foreign keys
    return Parties(student, counselor)


async def count_upcoming(session: AsyncSession, student_id: int, now: datetime) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(
                Appointment.student_id == student_id,
                Appointment.starts_at > now,
                Appointment.status.in_(ACTIVE_STATUSES),
            )
        )
        or 0
    )


async def at_booking_limit(
    session: AsyncSession, settings: Settings, student_id: int, now: datetime
) -> bool:
    """Whether the student holds the most upcoming appointments one student may."""
    return await count_upcoming(session, student_id, now) >= settings.appointment_max_upcoming


async def count_awaiting_confirmation(
    session: AsyncSession, counselor_id: int, now: datetime
) -> int:
    """A counselor's upcoming appointments still pending their confirmation."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(
                Appointment.counselor_id == counselor_id,
                Appointment.starts_at > now,
                Appointment.status == AppointmentStatus.PENDING,
            )
        )
        or 0
    )


async def list_student_appointments(
    session: AsyncSession,
    student: Student,
    *,
    upcoming: bool,
    offset: int,
    limit: int,
    now: datetime | None = None,
) -> tuple[list[tuple[Appointment, str]], bool]:
    """A page of the student's appointments with each counselor's name: upcoming (active, soonest
    first) or past (everything else, latest first)."""
    now = now or datetime.now(UTC)
    query = (
        select(Appointment, Counselor.full_name)
        .join(Counselor, Counselor.id == Appointment.counselor_id)
        .where(Appointment.student_id == student.id)
    )
    if upcoming:
        query = query.where(
            Appointment.status.in_(ACTIVE_STATUSES), Appointment.ends_at > now
        ).order_by(Appointment.starts_at, Appointment.id)
    else:
        query = query.where(
            (Appointment.status.not_in(ACTIVE_STATUSES)) | (Appointment.ends_at <= now)
        ).order_by(Appointment.starts_at.desc(), Appointment.id.desc())
    rows = (await session.execute(query.offset(offset).limit(limit + 1))).all()
    return [(row[0], row[1]) for row in rows[:limit]], len(rows) > limit


# --- what students do ---------------------------------------------------------------------------


async def do_book(
    session: AsyncSession,
    settings: Settings,
    student: Student,
    *,
    counselor_id: int | None,
    starts_at: datetime,
    reason: str | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book the free slot at `starts_at` with the counselor (None: whoever is free first).

    Raises SlotTaken (with the nearest free slots) when the time is not free, Conflict when the
    student holds the most upcoming appointments allowed or is busy at that time themselves."""
    text = check_reason(reason)
    window = BookingWindow.of(settings, now)
    # One booking per student at a time, so the limit below cannot be passed by two at once.
    await session.execute(select(Student.id).where(Student.id == student.id).with_for_update())
    if await at_booking_limit(session, settings, student.id, window.now):
        limit = settings.appointment_max_upcoming
        raise BookingLimitReached(
            f"You already have {limit} upcoming appointments, the most one student may hold. "
            "Cancel one to book another."
        )
    slot = await _find_free(session, window, starts_at, counselor_id=counselor_id)
    for offer in slot.offers:
        appointment = Appointment(
            student_id=student.id,
            counselor_id=offer.counselor_id,
            starts_at=slot.starts_at,
            ends_at=offer.ends_at,
            status=AppointmentStatus.PENDING,
            reason=text,
        )
        if await _insert(session, appointment):
            counselor = await session.get(Counselor, offer.counselor_id)
            assert counselor is not None
            await _after_change(
                session, settings, window, appointment, Parties(student, counselor), "booked"
            )
            return appointment
    # Everyone free at that time when we looked has been booked since.
    raise await _taken(session, window, starts_at, counselor_id=counselor_id)


async def do_cancel_by_student(
    session: AsyncSession,
    settings: Settings,
    student: Student,
    appointment_id: int,
    *,
    now: datetime | None = None,
) -> Appointment:
    window = BookingWindow.of(settings, now)
    appointment = await get_student_appointment(session, student, appointment_id, for_update=True)
    if appointment.status not in ACTIVE_STATUSES:
        raise NotChangeable("This appointment is no longer active.")
    if appointment.starts_at <= window.now:
        raise NotChangeable("This appointment has already started.")
    _cancel(appointment, CanceledBy.STUDENT, None, window.now)
    await session.flush()
    await _after_change(
        session, settings, window, appointment, await parties(session, appointment), "canceled"
    )
    return appointment


async def do_reschedule_by_student(
    session: AsyncSession,
    settings: Settings,
    student: Student,
    appointment_id: int,
    *,
    starts_at: datetime,
    now: datetime | None = None,
) -> Appointment:
    """Move to another free slot of the same counselor; the counselor confirms the new time."""
    window = BookingWindow.of(settings, now)
    appointment = await get_student_appointment(session, student, appointment_id, for_update=True)
    if appointment.status in ACTIVE_STATUSES and appointment.starts_at <= window.now:
        raise NotChangeable("This appointment has already started.")
    await _move(session, window, appointment, starts_at, appointment.counselor_id)
    appointment.status = AppointmentStatus.PENDING
    await session.flush()
    await _after_change(
        session, settings, window, appointment, await parties(session, appointment), "rescheduled"
    )
    return appointment


# --- what counselors do -------------------------------------------------------------------------


async def do_confirm(
    session: AsyncSession,
    settings: Settings,
    appointment_id: int,
    *,
    now: datetime | None = None,
) -> Appointment:
    window = BookingWindow.of(settings, now)
    appointment = await get_appointment(session, appointment_id, for_update=True)
    if appointment.status is not AppointmentStatus.PENDING:
        raise Conflict(
            f"Only a pending appointment can be confirmed (this one is {_status(appointment)})."
        )
    if appointment.starts_at <= window.now:
        raise Conflict("This appointment has already started.")
    appointment.status = AppointmentStatus.CONFIRMED
    await session.flush()
    who = await parties(session, appointment)
    await _after_change(session, settings, window, appointment, who, "confirmed")
    await _tell_student(session, settings, appointment, who, "appointments.notice_confirmed")
    return appointment


async def do_cancel_by_counselor(
    session: AsyncSession,
    settings: Settings,
    appointment_id: int,
    *,
    reason: str | None,
    now: datetime | None = None,
) -> Appointment:
    text = check_reason(reason, required=True)
    window = BookingWindow.of(settings, now)
    appointment = await get_appointment(session, appointment_id, for_update=True)
    if appointment.status not in ACTIVE_STATUSES:
        raise Conflict(f"This appointment is already {_status(appointment)}.")
    _cancel(appointment, CanceledBy.COUNSELOR, text, window.now)
    await session.flush()
    who = await parties(session, appointment)
    await _after_change(session, settings, window, appointment, who, "canceled")
    await _tell_student(
        session, settings, appointment, who, "appointments.notice_canceled", reason=text
    )
    return appointment


async def do_reschedule_by_counselor(
    session: AsyncSession,
    settings: Settings,
    appointment_id: int,
    *,
    starts_at: datetime,
    counselor_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move to a free slot of the same counselor or of a colleague; the new time is confirmed."""
    window = BookingWindow.of(settings, now)
    appointment = await get_appointment(session, appointment_id, for_update=True)
    old_start = appointment.starts_at
    await _move(session, window, appointment, starts_at, counselor_id or appointment.counselor_id)
    appointment.status = AppointmentStatus.CONFIRMED
    await session.flush()
    who = await parties(session, appointment)
    await _after_change(session, settings, window, appointment, who, "rescheduled")
    await _tell_student(
        session,
        settings,
        appointment,
        who,
        "appointments.notice_rescheduled",
        old=format_when(old_start, settings.tz),
    )
    return appointment


async def do_mark_attendance(
    session: AsyncSession,
    settings: Settings,
    appointment_id: int,
    *,
    attended: bool,
    now: datetime | None = None,
) -> Appointment:
    """Completed (the student came) or no-show, once the appointment has started."""
    window = BookingWindow.of(settings, now)
    appointment = await get_appointment(session, appointment_id, for_update=True)
    if appointment.status not in ACTIVE_STATUSES:
        raise Conflict(f"This appointment is already {_status(appointment)}.")
    if appointment.starts_at > window.now:
        raise Conflict("An appointment can be marked completed or no-show once it has started.")
    appointment.status = AppointmentStatus.COMPLETED if attended else AppointmentStatus.NO_SHOW
    await session.flush()
    who = await parties(session, appointment)
    await _after_change(
        session, settings, window, appointment, who, "completed" if attended else "no_show"
    )
    await _tell_student(
        session,
        settings,
        appointment,
        who,
        "appointments.notice_completed" if attended else "appointments.notice_no_show",
    )
    return appointment


async def do_cancel_for_absence(
    session: AsyncSession,
    settings: Settings,
    appointment_ids: list[int],
    *,
    reason: str | None,
    now: datetime | None = None,
) -> list[Appointment]:
    """Cancel several appointments (those an absence collides with), each student told why."""
    return [
        await do_cancel_by_counselor(session, settings, appointment_id, reason=reason, now=now)
        for appointment_id in sorted(set(appointment_ids))
    ]


# --- shared steps -------------------------------------------------------------------------------


def _status(appointment: Appointment) -> str:
    return appointment.status.value.replace("_", "-")


def _cancel(appointment: Appointment, by: CanceledBy, reason: str | None, now: datetime) -> None:
    appointment.status = AppointmentStatus.CANCELED
    appointment.canceled_by = by
    appointment.cancel_reason = reason
    appointment.canceled_at = now


async def _find_free(
    session: AsyncSession,
    window: BookingWindow,
    starts_at: datetime,
    *,
    counselor_id: int | None,
    ignore_appointment_id: int | None = None,
    current: datetime | None = None,
) -> FreeSlot:
    if starts_at.tzinfo is None:
        raise InvalidInput("A time must include its time zone offset.")
    day = starts_at.astimezone(window.tz).date()
    for slot in await free_slots_on(
        session,
        window,
        day,
        counselor_id=counselor_id,
        ignore_appointment_id=ignore_appointment_id,
    ):
        if slot.starts_at == starts_at:
            return slot
    raise await _taken(
        session,
        window,
        starts_at,
        counselor_id=counselor_id,
        ignore_appointment_id=ignore_appointment_id,
        current=current,
    )


async def _taken(
    session: AsyncSession,
    window: BookingWindow,
    starts_at: datetime,
    *,
    counselor_id: int | None,
    ignore_appointment_id: int | None = None,
    current: datetime | None = None,
) -> SlotTaken:
    """The refusal, with the nearest free slots; never the moved appointment's `current` time
    (free only because that appointment is the one being moved)."""
    alternatives = [
        slot
        for slot in await nearest_free(
            session,
            window,
            max(starts_at, window.earliest),
            counselor_id=counselor_id,
            ignore_appointment_id=ignore_appointment_id,
            count=ALTERNATIVES + 1,
        )
        if slot.starts_at != current
    ][:ALTERNATIVES]
    return SlotTaken(
        f"{format_when(starts_at, window.tz)} is not a free slot (any more).", alternatives
    )


async def _insert(session: AsyncSession, appointment: Appointment) -> bool:
    """Insert; False when the counselor's time was taken meanwhile (the exclusion constraint).
    The savepoint keeps the transaction usable for the next try."""
    try:
        async with session.begin_nested():
            session.add(appointment)
    except IntegrityError as exc:
        _raise_unless_counselor_overlap(exc)
        return False
    return True


async def _move(
    session: AsyncSession,
    window: BookingWindow,
    appointment: Appointment,
    starts_at: datetime,
    counselor_id: int,
) -> None:
    if appointment.status not in ACTIVE_STATUSES:
        raise NotChangeable(f"This appointment is {_status(appointment)}; it cannot be moved.")
    if starts_at == appointment.starts_at and counselor_id == appointment.counselor_id:
        raise InvalidInput("That is the appointment's current time.")
    slot = await _find_free(
        session,
        window,
        starts_at,
        counselor_id=counselor_id,
        ignore_appointment_id=appointment.id,
        current=appointment.starts_at,
    )
    offer = next(o for o in slot.offers if o.counselor_id == counselor_id)
    try:
        async with session.begin_nested():
            appointment.starts_at = slot.starts_at
            appointment.ends_at = offer.ends_at
            appointment.counselor_id = counselor_id
            appointment.reschedule_count += 1
            await session.flush()
    except IntegrityError as exc:
        _raise_unless_counselor_overlap(exc)
        await session.refresh(appointment)
        raise await _taken(
            session,
            window,
            starts_at,
            counselor_id=counselor_id,
            ignore_appointment_id=appointment.id,
            current=appointment.starts_at,
        ) from exc


def _raise_unless_counselor_overlap(exc: IntegrityError) -> None:
    message = str(exc.orig)
    if _STUDENT_OVERLAP in message:
        raise StudentBusy("You already have another appointment at that time.") from exc
    if _COUNSELOR_OVERLAP not in message:
        raise exc


async def _after_change(
    session: AsyncSession,
    settings: Settings,
    window: BookingWindow,
    appointment: Appointment,
    who: Parties,
    action: str,
) -> None:
    # Confirming changes neither the time nor whether the appointment is active: the reminders
    # queued at booking stay right, and re-queueing them would only churn outbox rows.
    if action != "confirmed":
        await do_reschedule_reminders(
            session,
            appointment,
            telegram_user_id=who.student.telegram_user_id,
            lang=who.student.language_code,
            counselor_name=who.counselor.full_name,
            offsets=settings.reminder_offsets,
            tz=window.tz,
            now=window.now,
        )
    emit(
        session,
        "appointment.created" if action == "booked" else "appointment.updated",
        appointment_event(appointment, who, action),
    )


def appointment_event(appointment: Appointment, who: Parties, action: str) -> dict[str, Any]:
    return {
        "action": action,
        "appointment": {
            "id": appointment.id,
            "status": appointment.status.value,
            "starts_at": appointment.starts_at.isoformat(),
            "ends_at": appointment.ends_at.isoformat(),
            "counselor_id": who.counselor.id,
            "counselor_name": who.counselor.full_name,
            "student_id": who.student.id,
            "student_name": who.student.full_name,
        },
    }


async def _tell_student(
    session: AsyncSession,
    settings: Settings,
    appointment: Appointment,
    who: Parties,
    key: str,
    **values: str,
) -> None:
    await do_enqueue(
        session,
        kind=NOTICE_KIND,
        telegram_user_id=who.student.telegram_user_id,
        text=t(
            key,
            who.student.language_code,
            counselor=who.counselor.full_name,
            when=format_when(appointment.starts_at, settings.tz),
            **values,
        ),
        ref={"appointment_id": appointment.id},
    )

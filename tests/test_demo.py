"""The demo data of a first `make run`: bookable counselors whatever the day, and appointments
around today for the dashboard's day, week and list views."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import schedule
from counseldesk.appointments.availability import slots_of_day
from counseldesk.appointments.models import Appointment, AppointmentStatus, ClosedDay
from counseldesk.appointments.slots import BookingWindow, free_days, free_slots_on
from counseldesk.demo import COUNSELORS, STUDENTS, introduce_to_emulator, load_demo_data
from counseldesk.staff import service as staff
from counseldesk.telegram.emulator.state import EmulatorState
from tests.appointments.factories import appointment_settings

SETTINGS = appointment_settings()
TZ = SETTINGS.tz

# Office-local clocks to start the demo at: a Wednesday morning, a Saturday evening (the
# weekend, after Saturday hours), a Sunday, and the eve of the demo's holiday (12 December).
CLOCKS = [
    datetime(2030, 3, 6, 9, 15, tzinfo=TZ),
    datetime(2030, 3, 9, 19, 0, tzinfo=TZ),
    datetime(2030, 3, 10, 12, 0, tzinfo=TZ),
    datetime(2030, 12, 11, 16, 30, tzinfo=TZ),
]


@pytest.mark.parametrize("local_now", CLOCKS, ids=lambda c: c.strftime("%a-%d-%b"))
async def test_a_student_can_book_on_a_fresh_start_whatever_the_day(
    session: AsyncSession, local_now: datetime
) -> None:
    now = local_now.astimezone(UTC)
    assert await load_demo_data(session, tz=TZ, now=now)
    window = BookingWindow.of(SETTINGS, now)
    days, _ = await free_days(session, window, limit=7)
    # The first bookable day is today or the next working day: at most Sunday (and the
    # holiday, on its eve) lies in between.
    assert days and (days[0].day - window.first_day).days <= 2
    assert all(day.free > 0 for day in days)
    for email, _ in COUNSELORS:
        counselor = await staff.find_counselor_by_email(session, email)
        assert counselor is not None
        hours = await schedule.get_weekly_hours(session, counselor.id)
        assert sorted(hours.days) == [0, 1, 2, 3, 4, 5]  # Monday to Saturday
        # Each of them can be booked within the next few days too.
        own, _ = await free_days(session, window, counselor_id=counselor.id, limit=1)
        assert own and (own[0].day - window.first_day).days <= 3
        slots = await free_slots_on(session, window, own[0].day, counselor_id=counselor.id)
        assert len(slots) == own[0].free > 0
    # Loading twice changes nothing.
    assert not await load_demo_data(session, tz=TZ, now=now)


@pytest.mark.parametrize("local_now", CLOCKS, ids=lambda c: c.strftime("%a-%d-%b"))
async def test_demo_appointments_fill_the_days_around_today(
    session: AsyncSession, local_now: datetime
) -> None:
    now = local_now.astimezone(UTC)
    await load_demo_data(session, tz=TZ, now=now)
    appointments = list((await session.scalars(select(Appointment))).all())
    closed = set((await session.scalars(select(ClosedDay.day))).all())
    past = {a.status for a in appointments if a.ends_at <= now}
    future = [a for a in appointments if a.starts_at > now]
    assert {
        AppointmentStatus.COMPLETED,
        AppointmentStatus.NO_SHOW,
        AppointmentStatus.CANCELED,
    } <= past
    assert {a.status for a in future} == {AppointmentStatus.PENDING, AppointmentStatus.CONFIRMED}
    # The week view has something on either side of today.
    assert sum(now - timedelta(days=7) < a.starts_at < now for a in appointments) >= 3
    assert sum(now < a.starts_at < now + timedelta(days=7) for a in appointments) >= 3
    for appointment in appointments:
        # On one of the counselor's slots, never on the closed day or during an absence.
        day = appointment.starts_at.astimezone(TZ).date()
        hours = await schedule.get_weekly_hours(session, appointment.counselor_id)
        ranges = tuple(hours.days.get(day.weekday(), ()))
        grid = slots_of_day(day, ranges, hours.slot_minutes, TZ)
        assert (appointment.starts_at, appointment.ends_at) in {
            (s.starts_at, s.ends_at) for s in grid
        }
        assert day not in closed
        assert day not in await _absent_days(session, appointment.counselor_id)
        assert appointment.created_at <= min(now, appointment.starts_at)
    # No student holds more upcoming appointments than a student may book.
    per_student: dict[int, int] = {}
    for appointment in future:
        per_student[appointment.student_id] = per_student.get(appointment.student_id, 0) + 1
    assert max(per_student.values()) <= SETTINGS.appointment_max_upcoming


async def _absent_days(session: AsyncSession, counselor_id: int) -> set[date]:
    absences = await schedule.list_absences(
        session, counselor_id=counselor_id, from_day=date(2000, 1, 1)
    )
    return {
        a.starts_on + timedelta(days=n)
        for a in absences
        for n in range((a.ends_on - a.starts_on).days + 1)
    }


def test_demo_students_are_telegram_users_of_the_emulator() -> None:
    state = EmulatorState()
    state.create_user(user_id=STUDENTS[0][0], first_name="Already")  # opened in the simulator

    assert introduce_to_emulator(state) == len(STUDENTS) - 1
    assert introduce_to_emulator(state) == 0  # once only, whatever restarts
    assert {user_id for user_id, *_ in STUDENTS} <= set(state.users)
    assert state.users[STUDENTS[1][0]].first_name == STUDENTS[1][2].split()[0]

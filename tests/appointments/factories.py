"""Appointment test data: a counselor's week, a fixed clock, bookings placed directly."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import schedule
from counseldesk.appointments.availability import HoursRange
from counseldesk.appointments.models import Appointment, AppointmentStatus
from counseldesk.config import Settings
from counseldesk.staff.models import Counselor
from tests.conftest import make_settings

# A Monday, 07:00 in Nairobi (UTC+3, no daylight saving): the clock most tests run at.
NOW = datetime(2030, 3, 4, 4, 0, tzinfo=UTC)


def appointment_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "office_timezone": "Africa/Nairobi",
        "appointment_min_notice_minutes": 60,
        "appointment_booking_days": 30,
        "appointment_max_upcoming": 3,
        "appointment_reminders": "1440,60",
    }
    values.update(overrides)
    return make_settings(**values)


async def give_hours(
    session: AsyncSession,
    counselor: Counselor,
    *,
    weekdays: Iterable[int] = range(5),
    ranges: Iterable[tuple[int, int]] = ((9, 12), (13, 17)),
    slot_minutes: int = 60,
) -> None:
    """Working hours on `weekdays` (0 = Monday), each day the same whole-hour ranges."""
    spans = [HoursRange(time(start), time(end)) for start, end in ranges]
    await schedule.set_weekly_hours(
        session,
        counselor.id,
        schedule.WeeklyHours(slot_minutes, {day: list(spans) for day in weekdays}),
    )


def local(
    settings: Settings, year: int, month: int, day: int, hour: int, minute: int = 0
) -> datetime:
    """An office-local wall-clock time as an aware UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=settings.tz).astimezone(UTC)


async def place(
    session: AsyncSession,
    *,
    student_id: int,
    counselor_id: int,
    starts_at: datetime,
    minutes: int = 60,
    status: AppointmentStatus = AppointmentStatus.CONFIRMED,
) -> Appointment:
    """An appointment written directly (no availability checks): for arranging a state."""
    appointment = Appointment(
        student_id=student_id,
        counselor_id=counselor_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        status=status,
    )
    session.add(appointment)
    await session.flush()
    return appointment


# --- on the real clock, for tests through the HTTP API (the service reads the time itself) -----


def days_ahead(settings: Settings, days: int, hour: int, minute: int = 0) -> datetime:
    """Office-local `hour:minute` on the day `days` after today (the real today), in UTC."""
    day = datetime.now(settings.tz).date() + timedelta(days=days)
    return local(settings, day.year, day.month, day.day, hour, minute)


async def give_every_day_hours(session: AsyncSession, counselor: Counselor) -> None:
    """09-12 and 13-17 on all seven days, so any day a test picks has slots."""
    await give_hours(session, counselor, weekdays=range(7))

"""Working hours keep their wall-clock times across daylight-saving changes.

Europe/Berlin moves to summer time on 31 March 2030 (02:00 -> 03:00) and back on 27 October
(03:00 -> 02:00); Nairobi has no daylight saving at all.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import service
from counseldesk.appointments.availability import HoursRange, day_bounds, slots_of_day
from counseldesk.appointments.formatting import format_when
from counseldesk.appointments.slots import BookingWindow, free_slots_on
from tests.appointments.factories import appointment_settings, give_hours, local
from tests.appointments.test_service import _reminders
from tests.factories import make_counselor, make_student

BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_ELEVEN = (HoursRange(time(9), time(11)),)


def _utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_nine_oclock_is_nine_oclock_on_both_sides_of_the_change() -> None:
    friday = slots_of_day(date(2030, 3, 29), NINE_TO_ELEVEN, 60, BERLIN)
    monday = slots_of_day(date(2030, 4, 1), NINE_TO_ELEVEN, 60, BERLIN)
    assert [s.starts_at for s in friday] == [_utc(2030, 3, 29, 8), _utc(2030, 3, 29, 9)]
    assert [s.starts_at for s in monday] == [_utc(2030, 4, 1, 7), _utc(2030, 4, 1, 8)]


def test_a_skipped_wall_clock_time_is_not_offered() -> None:
    night = (HoursRange(time(1), time(4)),)
    slots = slots_of_day(date(2030, 3, 31), night, 60, BERLIN)
    # 01:00 CET and 03:00 CEST; 02:00 does not exist that night.
    assert [s.starts_at for s in slots] == [_utc(2030, 3, 31, 0), _utc(2030, 3, 31, 1)]
    assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in slots)


def test_a_repeated_wall_clock_time_means_its_first_occurrence() -> None:
    night = (HoursRange(time(1), time(4)),)
    slots = slots_of_day(date(2030, 10, 27), night, 60, BERLIN)
    # 01:00 CEST, 02:00 CEST (the first of the two), 03:00 CET: real hours, never overlapping.
    assert [s.starts_at for s in slots] == [
        _utc(2030, 10, 26, 23),
        _utc(2030, 10, 27, 0),
        _utc(2030, 10, 27, 2),
    ]
    assert all(a.ends_at <= b.starts_at for a, b in itertools.pairwise(slots))


def test_day_bounds_follow_the_short_and_the_long_day() -> None:
    start, end = day_bounds(date(2030, 3, 31), BERLIN)
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2030, 10, 27), BERLIN)
    assert end - start == timedelta(hours=25)


def test_times_read_in_the_office_zone() -> None:
    assert format_when(_utc(2030, 4, 1, 7), BERLIN) == "Mon 1 Apr 2030, 09:00"
    assert format_when(_utc(2030, 3, 29, 8), BERLIN) == "Fri 29 Mar 2030, 09:00"


async def test_booking_and_reminders_in_a_daylight_saving_office(session: AsyncSession) -> None:
    settings = appointment_settings(office_timezone="Europe/Berlin")
    counselor = await make_counselor(session)
    await give_hours(session, counselor, weekdays=range(7), ranges=((9, 11),))
    student = await make_student(session)
    now = local(settings, 2030, 3, 29, 12)  # Friday, winter time
    window = BookingWindow.of(settings, now)

    monday = await free_slots_on(session, window, date(2030, 4, 1), counselor_id=counselor.id)
    assert [s.starts_at for s in monday] == [_utc(2030, 4, 1, 7), _utc(2030, 4, 1, 8)]

    appointment = await service.do_book(
        session,
        settings,
        student,
        counselor_id=counselor.id,
        starts_at=_utc(2030, 4, 1, 7),
        now=now,
    )
    assert appointment.ends_at == _utc(2030, 4, 1, 8)
    # A day before is 24 real hours before: 09:00 summer time on Sunday, the day of the change.
    reminders = await _reminders(session, appointment.id)
    assert [r.scheduled_for for r in reminders] == [_utc(2030, 3, 31, 7), _utc(2030, 4, 1, 6)]
    assert "Mon 1 Apr 2030, 09:00" in reminders[0].payload["text"]

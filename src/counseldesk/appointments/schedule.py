"""Counselors' availability in the database: reading it for slot computation, and editing it.

Reading takes a fixed number of statements whatever the range (counselors and their hours,
absences, closed days, booked time), each served by an index, so a month of "first available"
costs the same handful of round trips as one counselor's day.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.availability import HoursRange, Slot, day_bounds, slots_of_day
from counseldesk.appointments.models import (
    DEFAULT_SLOT_MINUTES,
    MAX_SLOT_MINUTES,
    MIN_SLOT_MINUTES,
    Absence,
    Appointment,
    AppointmentStatus,
    ClosedDay,
    CounselorSchedule,
    WorkingHours,
)
from counseldesk.errors import InvalidInput, NotFound
from counseldesk.staff.models import Counselor

MAX_RANGES_PER_DAY = 6
MAX_ABSENCE_DAYS = 366
MAX_REASON = 200


@dataclass
class CounselorAvailability:
    counselor_id: int
    full_name: str
    slot_minutes: int
    hours: dict[int, list[HoursRange]] = field(default_factory=dict)  # weekday -> ranges
    absences: list[tuple[date, date]] = field(default_factory=list)
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)

    def is_absent(self, day: date) -> bool:
        return any(first <= day <= last for first, last in self.absences)

    def slots(self, day: date, tz: ZoneInfo) -> tuple[Slot, ...]:
        """The day's slots by working hours alone (absences and bookings not applied)."""
        return slots_of_day(day, tuple(self.hours.get(day.weekday(), ())), self.slot_minutes, tz)


@dataclass
class Availability:
    counselors: list[CounselorAvailability]
    closed_days: dict[date, str]


async def load_availability(
    session: AsyncSession,
    *,
    first: date,
    last: date,
    tz: ZoneInfo,
    counselor_id: int | None = None,
    ignore_appointment_id: int | None = None,
) -> Availability:
    """Everything slot computation needs for office-local days `first`..`last`: the bookable
    counselors (active, with working hours; one, or all), their absences, the closed days, and
    the time already booked (minus `ignore_appointment_id`, the one being moved)."""
    hours_query = (
        select(
            Counselor.id,
            Counselor.full_name,
            CounselorSchedule.slot_minutes,
            WorkingHours.weekday,
            WorkingHours.starts_at,
            WorkingHours.ends_at,
        )
        .join(WorkingHours, WorkingHours.counselor_id == Counselor.id)
        .outerjoin(CounselorSchedule, CounselorSchedule.counselor_id == Counselor.id)
        .where(Counselor.is_active.is_(True))
        .order_by(Counselor.full_name, Counselor.id, WorkingHours.weekday, WorkingHours.starts_at)
    )
    if counselor_id is not None:
        hours_query = hours_query.where(Counselor.id == counselor_id)
    by_id: dict[int, CounselorAvailability] = {}
    for row in await session.execute(hours_query):
        entry = by_id.get(row.id)
        if entry is None:
            entry = by_id[row.id] = CounselorAvailability(
                row.id, row.full_name, row.slot_minutes or DEFAULT_SLOT_MINUTES
            )
        entry.hours.setdefault(row.weekday, []).append(HoursRange(row.starts_at, row.ends_at))
    closed = {
        row.day: row.reason
        for row in await session.execute(
            select(ClosedDay.day, ClosedDay.reason).where(ClosedDay.day.between(first, last))
        )
    }
    if not by_id:
        return Availability([], closed)
    ids = list(by_id)
    for absent_id, starts_on, ends_on in await session.execute(
        select(Absence.counselor_id, Absence.starts_on, Absence.ends_on).where(
            Absence.counselor_id.in_(ids), Absence.ends_on >= first, Absence.starts_on <= last
        )
    ):
        by_id[absent_id].absences.append((starts_on, ends_on))
    range_start = day_bounds(first, tz)[0]
    range_end = day_bounds(last, tz)[1]
    busy_query = select(Appointment.counselor_id, Appointment.starts_at, Appointment.ends_at).where(
        Appointment.counselor_id.in_(ids),
        # No appointment is longer than the longest slot, so this bounds the index range scan
        # on (counselor_id, starts_at) from both sides.
        Appointment.starts_at > range_start - timedelta(minutes=MAX_SLOT_MINUTES),
        Appointment.starts_at < range_end,
        Appointment.status != AppointmentStatus.CANCELED,
    )
    if ignore_appointment_id is not None:
        busy_query = busy_query.where(Appointment.id != ignore_appointment_id)
    for busy_id, starts_at, ends_at in await session.execute(busy_query):
        by_id[busy_id].busy.append((starts_at, ends_at))
    for entry in by_id.values():
        entry.busy.sort()
    return Availability(list(by_id.values()), closed)


# --- the editors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyHours:
    slot_minutes: int
    # weekday (0 = Monday) -> ranges, sorted
    days: dict[int, list[HoursRange]]


async def get_weekly_hours(session: AsyncSession, counselor_id: int) -> WeeklyHours:
    slot_minutes = await session.scalar(
        select(CounselorSchedule.slot_minutes).where(CounselorSchedule.counselor_id == counselor_id)
    )
    days: dict[int, list[HoursRange]] = {}
    for row in await session.execute(
        select(WorkingHours.weekday, WorkingHours.starts_at, WorkingHours.ends_at)
        .where(WorkingHours.counselor_id == counselor_id)
        .order_by(WorkingHours.weekday, WorkingHours.starts_at)
    ):
        days.setdefault(row.weekday, []).append(HoursRange(row.starts_at, row.ends_at))
    return WeeklyHours(slot_minutes or DEFAULT_SLOT_MINUTES, days)


def check_weekly_hours(slot_minutes: int, days: Mapping[int, Sequence[HoursRange]]) -> WeeklyHours:
    if not MIN_SLOT_MINUTES <= slot_minutes <= MAX_SLOT_MINUTES:
        raise InvalidInput(
            f"A slot lasts {MIN_SLOT_MINUTES} to {MAX_SLOT_MINUTES} minutes, not {slot_minutes}."
        )
    checked: dict[int, list[HoursRange]] = {}
    for weekday, ranges in days.items():
        if not 0 <= weekday <= 6:
            raise InvalidInput(f"A weekday is 0 (Monday) to 6 (Sunday), not {weekday}.")
        if len(ranges) > MAX_RANGES_PER_DAY:
            raise InvalidInput(f"At most {MAX_RANGES_PER_DAY} ranges per day.")
        ordered = sorted(ranges, key=lambda r: r.starts_at)
        for span in ordered:
            if span.ends_at <= span.starts_at:
                raise InvalidInput(
                    f"A range must end after it starts ({_hm(span.starts_at)}-{_hm(span.ends_at)})."
                )
        for before, after in itertools.pairwise(ordered):
            if after.starts_at < before.ends_at:
                raise InvalidInput(
                    f"Ranges {_hm(before.starts_at)}-{_hm(before.ends_at)} and "
                    f"{_hm(after.starts_at)}-{_hm(after.ends_at)} overlap."
                )
        if ordered:
            checked[weekday] = ordered
    return WeeklyHours(slot_minutes, checked)


async def set_weekly_hours(
    session: AsyncSession, counselor_id: int, hours: WeeklyHours
) -> WeeklyHours:
    """Replace a counselor's whole week. Booked appointments stay as they are (they were agreed);
    only new bookings follow the new hours."""
    await _require_counselor(session, counselor_id)
    await session.execute(delete(WorkingHours).where(WorkingHours.counselor_id == counselor_id))
    session.add_all(
        WorkingHours(
            counselor_id=counselor_id,
            weekday=weekday,
            starts_at=span.starts_at,
            ends_at=span.ends_at,
        )
        for weekday, ranges in hours.days.items()
        for span in ranges
    )
    await session.execute(
        insert(CounselorSchedule)
        .values(counselor_id=counselor_id, slot_minutes=hours.slot_minutes)
        .on_conflict_do_update(
            index_elements=[CounselorSchedule.counselor_id],
            set_={"slot_minutes": hours.slot_minutes},
        )
    )
    await session.flush()
    return hours


async def list_absences(
    session: AsyncSession, *, counselor_id: int | None, from_day: date, limit: int = 200
) -> list[Absence]:
    query = select(Absence).where(Absence.ends_on >= from_day)
    if counselor_id is not None:
        query = query.where(Absence.counselor_id == counselor_id)
    query = query.order_by(Absence.starts_on, Absence.id).limit(limit)
    return list((await session.scalars(query)).all())


def check_absence(starts_on: date, ends_on: date, reason: str | None) -> str:
    if ends_on < starts_on:
        raise InvalidInput("An absence must end on or after the day it starts.")
    if (ends_on - starts_on).days >= MAX_ABSENCE_DAYS:
        raise InvalidInput(f"An absence covers at most {MAX_ABSENCE_DAYS} days.")
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON:
        raise InvalidInput(f"A reason has at most {MAX_REASON} characters.")
    return text


async def add_absence(
    session: AsyncSession,
    *,
    counselor_id: int,
    starts_on: date,
    ends_on: date,
    reason: str | None,
    created_by_id: int | None,
) -> Absence:
    text = check_absence(starts_on, ends_on, reason)
    await _require_counselor(session, counselor_id)
    absence = Absence(
        counselor_id=counselor_id,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=text,
        created_by_id=created_by_id,
    )
    session.add(absence)
    await session.flush()
    return absence


async def get_absence(session: AsyncSession, absence_id: int) -> Absence:
    absence = await session.get(Absence, absence_id)
    if absence is None:
        raise NotFound(f"There is no absence {absence_id}.")
    return absence


async def delete_absence(session: AsyncSession, absence: Absence) -> None:
    await session.delete(absence)
    await session.flush()


async def list_closed_days(session: AsyncSession, *, from_day: date) -> list[ClosedDay]:
    return list(
        (
            await session.scalars(
                select(ClosedDay).where(ClosedDay.day >= from_day).order_by(ClosedDay.day)
            )
        ).all()
    )


async def add_closed_day(session: AsyncSession, day: date, reason: str | None) -> ClosedDay:
    text = check_absence(day, day, reason)
    await session.execute(
        insert(ClosedDay)
        .values(day=day, reason=text)
        .on_conflict_do_update(index_elements=[ClosedDay.day], set_={"reason": text})
    )
    closed = await session.get(ClosedDay, day, populate_existing=True)
    assert closed is not None
    return closed


async def delete_closed_day(session: AsyncSession, day: date) -> None:
    result = await session.execute(delete(ClosedDay).where(ClosedDay.day == day))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"{day.isoformat()} is not a closed day.")


async def _require_counselor(session: AsyncSession, counselor_id: int) -> Counselor:
    counselor = await session.get(Counselor, counselor_id)
    if counselor is None:
        raise NotFound(f"There is no counselor {counselor_id}.")
    return counselor


def _hm(value: time) -> str:
    return value.strftime("%H:%M")

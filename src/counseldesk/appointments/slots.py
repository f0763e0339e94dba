"""Free slots: what a student may book, for one counselor or for "first available".

A slot is free when it lies in the counselor's working hours, the day is neither an absence of
theirs nor an office closed day, it starts after the booking notice and within the booking
window, and no appointment holds any of its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.availability import Slot, free_slots
from counseldesk.appointments.schedule import Availability, load_availability
from counseldesk.config import Settings


@dataclass(frozen=True)
class Offer:
    """One bookable counselor at a free slot."""

    counselor_id: int
    counselor_name: str
    ends_at: datetime


@dataclass(frozen=True)
class FreeSlot:
    starts_at: datetime
    # Who is free then, in the order "first available" tries them.
    offers: tuple[Offer, ...]

    @property
    def ends_at(self) -> datetime:
        return self.offers[0].ends_at


@dataclass(frozen=True)
class BookingWindow:
    """What may be booked right now: from `earliest` on, up to and including `last_day`."""

    tz: ZoneInfo
    now: datetime
    earliest: datetime
    first_day: date
    last_day: date

    @classmethod
    def of(cls, settings: Settings, now: datetime | None = None) -> BookingWindow:
        tz = settings.tz
        now = now or datetime.now(UTC)
        earliest = now + timedelta(minutes=settings.appointment_min_notice_minutes)
        first_day = now.astimezone(tz).date()
        return cls(
            tz=tz,
            now=now,
            earliest=earliest,
            first_day=first_day,
            last_day=first_day + timedelta(days=settings.appointment_booking_days),
        )

    def clamp(self, first: date, last: date) -> tuple[date, date] | None:
        first, last = max(first, self.first_day), min(last, self.last_day)
        return (first, last) if first <= last else None


def _free_on(availability: Availability, day: date, window: BookingWindow) -> list[FreeSlot]:
    if day in availability.closed_days:
        return []
    merged: dict[datetime, list[tuple[int, Offer]]] = {}
    for counselor in availability.counselors:
        if counselor.is_absent(day):
            continue
        slots: list[Slot] = free_slots(
            counselor.slots(day, window.tz), counselor.busy, not_before=window.earliest
        )
        for slot in slots:
            merged.setdefault(slot.starts_at, []).append(
                (
                    len(counselor.busy),  # the least booked colleague first: spreads the load
                    Offer(counselor.counselor_id, counselor.full_name, slot.ends_at),
                )
            )
    return [
        FreeSlot(starts_at, tuple(offer for _, offer in sorted(offers, key=lambda o: o[0])))
        for starts_at, offers in sorted(merged.items())
    ]


async def free_slots_on(
    session: AsyncSession,
    window: BookingWindow,
    day: date,
    *,
    counselor_id: int | None = None,
    ignore_appointment_id: int | None = None,
) -> list[FreeSlot]:
    """The free slots of one office-local day (one counselor's, or everyone's merged)."""
    if window.clamp(day, day) is None:
        return []
    availability = await load_availability(
        session,
        first=day,
        last=day,
        tz=window.tz,
        counselor_id=counselor_id,
        ignore_appointment_id=ignore_appointment_id,
    )
    return _free_on(availability, day, window)


@dataclass(frozen=True)
class FreeDay:
    day: date
    free: int  # how many free slots


async def free_days(
    session: AsyncSession,
    window: BookingWindow,
    *,
    counselor_id: int | None = None,
    start: date | None = None,
    limit: int = 7,
    ignore_appointment_id: int | None = None,
) -> tuple[list[FreeDay], date | None]:
    """Up to `limit` days from `start` on that have a free slot, and the day to continue from
    (None when the booking window holds no more).

    One counselor's window is read at once (a month of one person's bookings is small, and
    round trips cost more than rows). Everyone's is read in stretches, the first `limit` + 1
    days long (usually enough, next page's start included), each following one twice as long:
    "first available" over hundreds of counselors would otherwise load a month of bookings to
    show the next week."""
    span = window.clamp(start or window.first_day, window.last_day)
    if span is None:
        return [], None
    day, last = span
    stretch = (last - day) if counselor_id is not None else timedelta(days=max(limit, 1))
    found: list[FreeDay] = []
    while day <= last:
        chunk_end = min(day + stretch, last)
        stretch *= 2
        availability = await load_availability(
            session,
            first=day,
            last=chunk_end,
            tz=window.tz,
            counselor_id=counselor_id,
            ignore_appointment_id=ignore_appointment_id,
        )
        if not availability.counselors:
            return found, None  # nobody bookable at all: no need to look further
        while day <= chunk_end:
            slots = _free_on(availability, day, window)
            if slots:
                if len(found) == limit:
                    return found, day
                found.append(FreeDay(day, len(slots)))
            day += timedelta(days=1)
    return found, None


async def nearest_free(
    session: AsyncSession,
    window: BookingWindow,
    around: datetime,
    *,
    counselor_id: int | None = None,
    count: int = 3,
    ignore_appointment_id: int | None = None,
) -> list[FreeSlot]:
    """The `count` free slots closest in time to `around` (a slot someone just took): first
    those of the same day, then the following days; in time order."""
    day = around.astimezone(window.tz).date()
    span = window.clamp(day, window.last_day)
    if span is None:
        return []
    availability = await load_availability(
        session,
        first=span[0],
        last=span[1],
        tz=window.tz,
        counselor_id=counselor_id,
        ignore_appointment_id=ignore_appointment_id,
    )
    same_day = _free_on(availability, span[0], window)
    picked = sorted(same_day, key=lambda s: abs((s.starts_at - around).total_seconds()))[:count]
    current = span[0] + timedelta(days=1)
    while len(picked) < count and current <= span[1]:
        picked.extend(_free_on(availability, current, window)[: count - len(picked)])
        current += timedelta(days=1)
    return sorted(picked, key=lambda s: s.starts_at)

"""From weekly hours to bookable instants: pure functions, no database.

Working hours are wall-clock times in the office's zone. A day's slots are laid out on the wall
clock (9:00, 10:00, ...) and each is then turned into an instant with the zone's rules of that
date, so a daylight-saving change moves nothing a counselor sees. A wall-clock time the change
skips (02:30 on a spring-forward night) is not offered; one it repeats (autumn) means its first
occurrence, and a slot's length is always real elapsed time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@dataclass(frozen=True, order=True)
class Slot:
    starts_at: datetime  # aware, UTC
    ends_at: datetime

    def overlaps(self, starts_at: datetime, ends_at: datetime) -> bool:
        return self.starts_at < ends_at and starts_at < self.ends_at


@dataclass(frozen=True)
class HoursRange:
    starts_at: time
    ends_at: time


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """The instant of wall-clock `at` on `day` in `tz`, in UTC; None if that time does not exist
    on that day (skipped by a daylight-saving change)."""
    local = datetime.combine(day, at, tzinfo=tz)  # fold=0: the first of a repeated time
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where the office-local `day` begins and the next one begins."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


@lru_cache(maxsize=4096)
def slots_of_day(
    day: date, hours: tuple[HoursRange, ...], slot_minutes: int, tz: ZoneInfo
) -> tuple[Slot, ...]:
    """Every slot the working hours of `day` hold, in order, whether booked or not.

    Cached: colleagues mostly share their hours, and "first available" asks for every
    counselor's grid of every day it looks at."""
    length = timedelta(minutes=slot_minutes)
    slots: set[Slot] = set()
    for span in hours:
        cursor = datetime.combine(day, span.starts_at)
        end = datetime.combine(day, span.ends_at)
        while cursor + length <= end:
            instant = local_instant(day, cursor.time(), tz)
            if instant is not None:
                slots.add(Slot(instant, instant + length))
            cursor += length
    return tuple(sorted(slots))


def free_slots(
    slots: Sequence[Slot],
    busy: Iterable[tuple[datetime, datetime]],
    *,
    not_before: datetime,
) -> list[Slot]:
    """The slots that start at or after `not_before` and overlap none of the busy intervals.

    One counselor's busy intervals never overlap each other (the exclusion constraint), so in
    start order their ends are in order too: a slot is free when the last interval starting
    before the slot ends has also ended before the slot starts. A binary search per slot keeps a
    month of "first available" over hundreds of counselors cheap."""
    taken = sorted(busy)
    starts = [start for start, _ in taken]
    free = []
    for slot in slots:
        if slot.starts_at < not_before:
            continue
        before_end = bisect_left(starts, slot.ends_at) - 1
        if before_end >= 0 and taken[before_end][1] > slot.starts_at:
            continue
        free.append(slot)
    return free

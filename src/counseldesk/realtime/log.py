"""The recent events of the office, kept once per process and read by every local subscriber.

A live dashboard connection is a cursor into this log, not a queue of its own: publishing an event
costs one slot write and one wake-up however many counselors are connected, a slow connection
cannot make the process buffer without bound (it falls behind the oldest slot and resynchronizes),
and 10,000 idle connections cost 10,000 small waiting coroutines and nothing else.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from counseldesk.realtime.events import Event

_ID_SHAPE = re.compile(r"(\d{1,19})-(\d{1,19})")


@dataclass(frozen=True, order=True, slots=True)
class EventId:
    """Milliseconds and a sequence number, ordered like Redis stream ids (`1732550400000-3`).

    Both bus implementations use this shape, so a browser's Last-Event-ID means the same thing to
    every instance, and the time inside it tells how old a resume point is.
    """

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> EventId | None:
        match = _ID_SHAPE.fullmatch(text.strip())
        return cls(int(match[1]), int(match[2])) if match else None


ZERO = EventId(0, 0)


@dataclass(frozen=True, slots=True)
class Entry:
    id: EventId
    event: Event


class EventLog:
    """A ring of the last `capacity` events, in id order, with a wake-up for waiting readers.

    Entries have absolute positions (0, 1, 2, ... since the log was made); the ring holds the
    positions `start` to `end - 1`. `floor` is an id such that every event newer than it is in the
    ring: the id the log started after, then the id of each entry pushed out.
    """

    def __init__(self, capacity: int, floor: EventId) -> None:
        if capacity < 1:
            raise ValueError("an event log holds at least one event")
        self.capacity = capacity
        self.floor = floor
        self._slots: list[Entry | None] = [None] * capacity
        self.start = 0
        self.end = 0
        # Heartbeats wake readers without an event; each reader compares the count it last saw.
        self.ticks = 0
        self.closed = False
        self._changed = asyncio.Event()

    @property
    def head(self) -> EventId:
        """The newest id in the log (the floor while it is empty)."""
        return self.at(self.end - 1).id if self.end > self.start else self.floor

    def at(self, position: int) -> Entry:
        if not self.start <= position < self.end:
            raise IndexError(position)
        entry = self._slots[position % self.capacity]
        assert entry is not None
        return entry

    def position_after(self, event_id: EventId) -> int:
        """The position of the first entry newer than `event_id` (`end` when there is none)."""
        low, high = self.start, self.end
        while low < high:
            middle = (low + high) // 2
            if self.at(middle).id <= event_id:
                low = middle + 1
            else:
                high = middle
        return low

    def append(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.id <= self.head:
                continue  # a re-read after a reconnect to Redis; ids only grow
            if self.end - self.start == self.capacity:
                self.floor = self.at(self.start).id
                self.start += 1
            self._slots[self.end % self.capacity] = entry
            self.end += 1
        if entries:
            self._wake()

    def tick(self) -> None:
        self.ticks += 1
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def wait(self) -> None:
        """Until the next append, tick or close."""
        await self._changed.wait()

    def _wake(self) -> None:
        # set() resolves every waiter's own future at once; clear() right after arms the next
        # round. A waiter cancelled meanwhile (its connection closed) only drops its own future.
        self._changed.set()
        self._changed.clear()

"""Live events: recorded by services during a unit of work, published after it commits.

A service calls `emit(session, "message.created", {...})`; the unit of work hands the events to
the process's event sink (the realtime bus) only once the commit succeeded. A rollback drops them,
so no counselor ever sees a message that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_EVENTS = "counseldesk.events"


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def data_json(self) -> str:
        """`data` as compact JSON, encoded once: the same event goes to every open dashboard."""
        cached: str | None = self.__dict__.get("_json")
        if cached is None:
            cached = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
            self.remember_json(cached)
        return cached

    def remember_json(self, encoded: str) -> None:
        """Keep `data`'s JSON when it is already at hand (read from Redis)."""
        object.__setattr__(self, "_json", encoded)  # a cache, not a field: frozen still holds


EventSink = Callable[[list[Event]], Awaitable[None]]


def emit(session: AsyncSession, type_: str, data: dict[str, Any]) -> None:
    session.info.setdefault(_EVENTS, []).append(Event(type_, data))


def take_events(session: AsyncSession) -> list[Event]:
    events: list[Event] = session.info.pop(_EVENTS, [])
    return events

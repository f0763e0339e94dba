"""The realtime bus: events published after commit, followed live by the dashboards.

`publish(events)` is the database's event sink (see db/engine.py: called after each commit).
`subscribe(last_event_id)` yields `(event_id, event)`: first what the subscriber missed after
`last_event_id`, then everything new, live. Two implementations:

- `RedisEventBus` (when REDIS_URL is set): one Redis stream for the office (XADD with
  MAXLEN ~), so every app instance sees every event and a browser may reconnect to any instance.
  Each process runs ONE reader (XREAD BLOCK) that appends to its local `EventLog`; the process's
  connections all read that log. Redis therefore sees one blocking read per instance, not one per
  counselor, and a replay older than the local log is read back from the stream (XRANGE).
- `LocalEventBus` (no Redis, one instance): the same log, fed directly by publish().

Besides real events a subscription yields three control events, which the SSE layer turns into
protocol frames: READY (replay done, now live; its id is the resume point), RESYNC (the history
no longer reaches back to `last_event_id`, or it is unknown: reload everything from the API) and
KEEPALIVE (a heartbeat tick with nothing new; one timer per process drives all connections).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from counseldesk.realtime.events import Event
from counseldesk.realtime.log import ZERO, Entry, EventId, EventLog

log = logging.getLogger(__name__)

READY = Event("ready")
RESYNC = Event("resync")
KEEPALIVE = Event("keepalive")
CONTROL_EVENTS = frozenset({READY.type, RESYNC.type, KEEPALIVE.type})

# How much history a reconnecting dashboard can get back (events, per process and in Redis).
DEFAULT_HISTORY = 10_000
DEFAULT_HEARTBEAT_SECONDS = 15.0
STREAM_KEY = "counseldesk:events"
# Replays from Redis are read in pages, so a long one never holds a huge reply in memory.
HISTORY_PAGE = 500
READ_BLOCK_MS = 5_000


class EventBus(Protocol):
    async def publish(self, events: list[Event]) -> None: ...

    def subscribe(self, last_event_id: str | None) -> AsyncGenerator[tuple[str, Event], None]: ...

    def end_streams(self) -> None:
        """End every subscription (the web server is stopping); publishing goes on."""

    async def close(self) -> None: ...


class _LogBus(ABC):
    """What both buses share: the local log, the heartbeat, and the subscription loop."""

    def __init__(self, *, history: int, heartbeat_seconds: float) -> None:
        self.history = history
        self.heartbeat_seconds = heartbeat_seconds
        self._log: EventLog | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock: asyncio.Lock | None = None
        self._ended = False
        # Open subscriptions in this process (live dashboard connections), for monitoring.
        self.subscribers = 0

    # --- what an implementation provides ---------------------------------------------------

    @abstractmethod
    async def _open_log(self) -> EventLog: ...

    @abstractmethod
    async def _newest_known(self) -> EventId:
        """The newest id any instance has published (a resume point beyond it is bogus)."""

    async def _history(self, after: EventId, upto: EventId) -> tuple[list[Entry], bool] | None:
        """Entries with `after < id <= upto`, a page at a time, and whether the page reached
        `upto`; None when some of them are gone (trimmed), so the subscriber must resync."""
        return None

    # --- the shared part ---------------------------------------------------------------------

    async def _started(self) -> EventLog:
        """The log, opened (and the heartbeat started) by the first subscriber."""
        if self._log is not None and (self._tasks or self._ended):
            return self._log
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._log is None:
                self._log = await self._open_log()
            if self._ended:
                self._log.close()
            elif not any(task.get_name() == "event-heartbeat" for task in self._tasks):
                self._tasks.append(asyncio.create_task(self._beat(), name="event-heartbeat"))
        return self._log

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            if self._log is not None:
                self._log.tick()

    async def subscribe(self, last_event_id: str | None) -> AsyncGenerator[tuple[str, Event], None]:
        events = await self._started()
        if events.closed:
            return
        self.subscribers += 1
        try:
            if not last_event_id:
                cursor = events.head
            else:
                resume = EventId.parse(last_event_id)
                if resume is None or resume > await self._newest_known():
                    cursor = events.head
                    yield str(cursor), RESYNC
                else:
                    cursor = resume
            position: int | None = None
            live = False
            ticks = events.ticks
            while not events.closed:
                if position is None or position < events.start:
                    # The ring no longer holds everything after the cursor (a replay from before
                    # this process's log, or a reader too slow for the traffic): read the gap
                    # from the history, or tell the client to reload when that lost it too.
                    while cursor < events.floor:
                        upto = events.floor
                        page = await self._history(cursor, upto)
                        if page is None:
                            cursor = events.head
                            yield str(cursor), RESYNC
                            break
                        entries, complete = page
                        for entry in entries:
                            cursor = entry.id
                            yield str(entry.id), entry.event
                        if complete:
                            cursor = max(cursor, upto)
                    position = events.position_after(cursor)
                if position < events.end:
                    entry = events.at(position)
                    position += 1
                    if entry.id > cursor:  # else: a resume point our reader had not reached
                        cursor = entry.id
                        yield str(cursor), entry.event
                    continue
                if not live:
                    live = True
                    yield str(cursor), READY
                    continue
                await events.wait()
                if events.ticks != ticks:
                    ticks = events.ticks
                    if position >= events.end and not events.closed:
                        yield str(cursor), KEEPALIVE
        finally:
            self.subscribers -= 1

    def end_streams(self) -> None:
        self._ended = True
        if self._log is not None:
            self._log.close()

    async def close(self) -> None:
        self.end_streams()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class LocalEventBus(_LogBus):
    """One process, no Redis: ids are made here, history is the ring itself."""

    def __init__(
        self,
        *,
        history: int = DEFAULT_HISTORY,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        super().__init__(history=history, heartbeat_seconds=heartbeat_seconds)
        # Ids start at this process's start time, so a Last-Event-ID from an earlier process
        # is older than the floor and gets a resync rather than a silently partial replay.
        self._last = EventId(_now_ms(), 0)
        self._log = EventLog(history, floor=self._last)

    async def _open_log(self) -> EventLog:
        assert self._log is not None
        return self._log

    async def _newest_known(self) -> EventId:
        return self._last

    def _next_id(self) -> EventId:
        now = _now_ms()
        last = self._last
        self._last = EventId(now, 0) if now > last.ms else EventId(last.ms, last.seq + 1)
        return self._last

    async def publish(self, events: list[Event]) -> None:
        assert self._log is not None
        self._log.append([Entry(self._next_id(), event) for event in events])


class RedisEventBus(_LogBus):
    """Several instances: the office's events live in one Redis stream."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: str = STREAM_KEY,
        history: int = DEFAULT_HISTORY,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        super().__init__(history=history, heartbeat_seconds=heartbeat_seconds)
        self.redis = redis
        self.key = key

    async def publish(self, events: list[Event]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    self.key,
                    {"type": event.type, "data": event.data_json()},
                    maxlen=self.history,
                    approximate=True,
                )
            await pipe.execute()

    async def _stream_info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self.redis.xinfo_stream(self.key)
        except ResponseError:  # no such key: nothing was ever published (or Redis was emptied)
            return None
        return info

    async def _newest_known(self) -> EventId:
        info = await self._stream_info()
        return _parse_id(info["last-generated-id"]) if info else ZERO

    async def _open_log(self) -> EventLog:
        # The log starts at the stream's current end: older events are read back on demand.
        events = EventLog(self.history, floor=await self._newest_known())
        self._tasks.append(asyncio.create_task(self._read(events), name="event-reader"))
        return events

    async def _read(self, events: EventLog) -> None:
        """The process's one reader: follows the stream into the local log."""
        last = events.floor
        pause = 0.2
        while True:
            try:
                reply = await self.redis.xread(
                    {self.key: str(last)}, count=HISTORY_PAGE, block=READ_BLOCK_MS
                )
            except (RedisError, OSError):
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # redis-py turns a cancellation during a blocking read into its own
                    # TimeoutError; swallowing that would leave close() waiting forever.
                    raise asyncio.CancelledError from None
                # Redis away: retry from the same id, so nothing still in the stream is missed.
                log.warning("reading live events from Redis failed; retrying", exc_info=True)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.2
            entries = [_decode(raw_id, fields) for raw_id, fields in _stream_rows(reply)]
            if entries:
                events.append(entries)
                last = entries[-1].id

    async def _history(self, after: EventId, upto: EventId) -> tuple[list[Entry], bool] | None:
        rows: Any = await self.redis.xrange(
            self.key, min=f"({after}", max=str(upto), count=HISTORY_PAGE
        )
        # Checked after the read: trimming only moves forward, so if nothing after `after` was
        # trimmed now, nothing was when the page was read.
        info = await self._stream_info()
        if info is None:
            return None
        if _trimmed(info, self.history):
            first = info.get("first-entry")
            oldest = _parse_id(first[0]) if first else _parse_id(info["last-generated-id"])
            if after < oldest:
                # Conservative: the trimmed ids are all below `oldest`, but which exactly is
                # unknown, so a cursor below it may have missed some.
                return None
        entries = [_decode(raw_id, fields) for raw_id, fields in rows or []]
        return entries, len(entries) < HISTORY_PAGE


def build_event_bus(redis: Redis | None) -> EventBus:
    return RedisEventBus(redis) if redis is not None else LocalEventBus()


# --- helpers ---------------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(value: str | bytes) -> EventId:
    parsed = EventId.parse(_text(value))
    if parsed is None:
        raise ValueError(f"not a stream id: {value!r}")
    return parsed


def _trimmed(info: dict[str, Any], maxlen: int) -> bool:
    added = info.get("entries-added")  # Redis 7+
    if added is None:
        return int(info["length"]) >= maxlen
    return int(added) > int(info["length"])


def _stream_rows(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    # XREAD's RESP2 answer: [[key, [(id, fields), ...]]] (None when the block timed out).
    return [row for _key, rows in reply or [] for row in rows]


def _decode(raw_id: str | bytes, fields: dict[Any, Any]) -> Entry:
    values = {_text(k): _text(v) for k, v in fields.items()}
    event_type = values.get("type", "unknown")
    raw = values.get("data", "{}")
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("event %s has undecodable data; delivering it empty", _text(raw_id))
        data, raw = {}, "{}"
    event = Event(event_type, data if isinstance(data, dict) else {"value": data})
    event.remember_json(raw)
    return Entry(_parse_id(raw_id), event)

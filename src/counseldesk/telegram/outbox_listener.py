"""LISTEN on the outbox channel, so the worker wakes the moment a notification commits.

`do_enqueue` runs `pg_notify` in the enqueuing transaction; PostgreSQL delivers it at commit (and
never for a rollback). LISTEN needs a connection of its own that stays open, outside the pool:
a pooled connection would be handed to other work, and SQLAlchemy's pool would recycle it.

A dropped connection is reopened with backoff. Notifications sent while it was down are lost,
so every (re)connect also wakes the worker once, and the worker polls now and then anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)


def listen_dsn(url: URL) -> str:
    """A plain libpq-style URL for asyncpg from the engine's (`postgresql+asyncpg://...`)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxListener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[], None],
        *,
        heartbeat: float = 15.0,
        connect_timeout: float = 5.0,
        max_backoff: float = 30.0,
    ):
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._backoff = 0.5
        # Set while LISTEN is active (tests wait for it before enqueueing).
        self.listening = asyncio.Event()

    def _notified(
        self, _conn: object, _pid: int, _channel: str, _payload: object
    ) -> None:  # asyncpg's callback signature
        self._on_notify()

    async def run(self, stop: asyncio.Event) -> None:
        self._backoff = 0.5
        while not stop.is_set():
            try:
                await self._listen_until_lost(stop)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox listener lost (%s); reconnecting in %.1f s", exc, self._backoff)
            finally:
                self.listening.clear()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._backoff)
                self._backoff = min(self._backoff * 2, self._max_backoff)

    async def _listen_until_lost(self, stop: asyncio.Event) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": "counseldesk-outbox-listener"},
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(self._channel, self._notified)
            self.listening.set()
            self._backoff = 0.5
            self._on_notify()  # whatever was enqueued while we were not listening
            while not stop.is_set() and not lost.is_set():
                await wait_first(stop, lost, seconds=self._heartbeat)
                if not stop.is_set() and not lost.is_set():
                    # A half-open TCP connection stays silent: only a query notices it is gone.
                    await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
            if lost.is_set():
                raise ConnectionError("the connection was closed")
        finally:
            if not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), timeout=2)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()


async def wait_first(*events: asyncio.Event, seconds: float) -> None:
    """Until one of the events is set or `seconds` pass."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

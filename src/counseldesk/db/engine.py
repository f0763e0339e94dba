"""Engine, pool and session factory; the unit of work that commits exactly once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from counseldesk.config import Settings
from counseldesk.db.pool import FairAsyncQueuePool
from counseldesk.db.records import Reader
from counseldesk.db.urls import to_asyncpg_url
from counseldesk.realtime.events import EventSink, take_events

# Where the pool keeps the planner settings a reader left on a connection (db/records.py,
# `Reader`): in the connection's own `info`, which ends with it.
_HELD_SETTINGS = "counseldesk.held_settings"
# Set while a reader takes its connection: readers bring their own settings to it.
_LENDING_TO_A_READER: ContextVar[bool] = ContextVar("lending_to_a_reader", default=False)


def _held_settings(info: dict[Any, Any]) -> dict[str, str]:
    held: dict[str, str] = info.setdefault(_HELD_SETTINGS, {})
    return held


def _defaults_for_sessions(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A connection a reader left with planner settings gets its defaults back before a session
    uses it (a pool checkout; readers change only what they need themselves)."""
    held = _held_settings(record.info)
    if not held or _LENDING_TO_A_READER.get():
        return
    reset = "; ".join(f"RESET {name}" for name in held)
    try:
        dbapi_connection.run_async(lambda driver: driver.execute(reset))
    except Exception as error:
        # The pool then replaces the connection and tries another.
        raise exc.DisconnectionError(f"resetting planner settings failed: {error}") from error
    held.clear()


# When the pool replaces a connection (db_connection_max_age, spread: `_replaced_in_turn`).
_REPLACE_AFTER = "counseldesk.replace_after"


def _replaced_in_turn(max_age: float) -> tuple[Callable[..., None], Callable[..., None]]:
    """Pool listeners that replace each connection at an age of its own, between three quarters
    of `max_age` and all of it. With one age for all (pool_recycle), the connections a burst of
    traffic had opened together were replaced together, minutes later, and every request in
    flight waited while each new connection prepared and planned its statements again: at 32
    clients, 30-odd requests took 200-330 ms at once (docs/benchmarks.md, session 13). A
    replacement still costs the request that meets it ~12 ms on an idle machine (~250 ms when
    the processes are saturated), which is why the default age is half an hour."""

    def on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info[_REPLACE_AFTER] = time.monotonic() + max_age * random.uniform(0.75, 1.0)  # noqa: S311 - spreading, not secrecy

    def on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() > record.info.get(_REPLACE_AFTER, float("inf")):
            # The pool closes it and opens another in its place (its `info` starts empty).
            raise exc.DisconnectionError("connection reached its age; replacing it")

    return on_connect, on_checkout


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    engine = _create_engine(url, settings)
    on_connect, on_checkout = _replaced_in_turn(settings.db_connection_max_age)
    event.listen(engine.sync_engine, "connect", on_connect)
    # Replaced first, so a connection about to go is not reset for a session in vain.
    event.listen(engine.sync_engine, "checkout", on_checkout)
    event.listen(engine.sync_engine, "checkout", _defaults_for_sessions)
    return engine


def _create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        to_asyncpg_url(url),
        # Requests waiting for a connection are served in the order they came (db/pool.py).
        poolclass=FairAsyncQueuePool,
        # Every connection opened is kept: SQLAlchemy closes "overflow" connections as soon as
        # they are returned, so a pool smaller than the load's concurrency opened and closed
        # connections all the time, each new one paying for its backend process, type lookups
        # and five planned-from-scratch executions of every statement. Measured at 32 clients:
        # a third of the inbox's throughput. The pool still opens connections only on demand.
        pool_size=settings.db_pool_max,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        # Connections are replaced after db_connection_max_age, each at an age of its own
        # (`_replaced_in_turn`), not all at once by pool_recycle. A replaced connection loses
        # its prepared statements and plans: minutes, not seconds.
        connect_args={
            "timeout": settings.db_connect_timeout,
            "server_settings": {
                "application_name": "counseldesk",
                "timezone": "UTC",
                # Every statement of the app is built to read a page's worth of rows, in well
                # under a millisecond. Where the planner's guesses are large (a search term's
                # kept plan, support/repository.py) it would start parallel workers (~40 ms on
                # a small machine) and compile the statement to machine code: 17 ms on every
                # execution of the search collection's kept plan, whose cost estimate passed
                # jit_above_cost (docs/benchmarks.md, session 10).
                "max_parallel_workers_per_gather": "0",
                "jit": "off",
                # A search term is written into a walk's SQL as a quoted literal (support/
                # repository.py, `_Search.in_the_sql`); quoted as the dialect quotes it, a
                # backslash in it is only a backslash with this on (PostgreSQL's default).
                "standard_conforming_strings": "on",
            },
        },
    )


class Database:
    """The process's handle on PostgreSQL: one engine and its session factory.

    Tests build one around a connection inside an outer transaction, so everything a test does is
    rolled back at its end.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        read_bind: AsyncConnection | None = None,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        # Where readers read when not from the pool: the tests' one connection, whose outer
        # transaction holds what the test arranged.
        self.read_bind = read_bind
        # Where live events go after a commit (the realtime bus); None drops them.
        self.event_sink: EventSink | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> Database:
        engine = create_engine(url, settings)
        return cls(engine, async_sessionmaker(engine, expire_on_commit=False))

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """Yield a session; commit when the block succeeds, roll back when it raises.

        This is the only place counseldesk commits. Services flush, never commit. Callbacks
        registered with `after_commit` run once the commit succeeded, and never after a rollback.
        """
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                session.info.pop(_AFTER_COMMIT, None)
                take_events(session)
                raise
            else:
                await session.commit()
                await run_after_commit(session)
                events = take_events(session)
                if events and self.event_sink is not None:
                    try:
                        await self.event_sink(events)
                    except Exception:  # committed data stands; clients resync on reconnect
                        log.exception("publishing %d live events failed", len(events))

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Reader]:
        """A connection for reads only (see db/records.py, `Reader`), back to the pool after."""
        if self.read_bind is not None:
            raw = await self.read_bind.get_raw_connection()
            reader = Reader(raw.driver_connection, self.read_bind.dialect)
            try:
                yield reader
            finally:
                await reader.end()
            return
        # Taken when the route's dependencies are solved, not at the first read: a route must
        # not ask for a session after its reader, or it holds one connection while it waits
        # for a second (the pool has no overflow).
        lending = _LENDING_TO_A_READER.set(True)
        try:
            pooled = await self.engine.raw_connection()
        finally:
            _LENDING_TO_A_READER.reset(lending)
        held = _held_settings(pooled.info)
        reader = Reader(pooled.driver_connection, self.engine.dialect, held)
        try:
            yield reader
        finally:
            try:
                await reader.end()
            finally:
                # A reader opens no transaction, and the pool's reset on return knows nothing of
                # one the adapter did not start: a connection left in one is not lent again.
                if reader.driver.is_in_transaction():
                    reader.broken = True
                # The pool's own calls may talk to the connection: in a greenlet, as SQLAlchemy's
                # async layer requires. A broken connection is closed and replaced later.
                try:
                    if reader.broken:
                        await greenlet_spawn(pooled.invalidate)
                finally:
                    await greenlet_spawn(pooled.close)

    async def dispose(self) -> None:
        await self.engine.dispose()


_AFTER_COMMIT = "counseldesk.after_commit"
log = logging.getLogger(__name__)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` after the session's unit of work commits (a live event, a wake-up call).

    Side effects must not leave before the data they describe is committed: a counselor's screen
    would otherwise show a message that a rollback then erased.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    callbacks = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # the data is committed; a lost live event must not fail the request
            log.exception("after-commit callback failed")

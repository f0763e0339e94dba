"""The connection pool serves waiting requests first come, first served (db/pool.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from counseldesk.db.engine import _REPLACE_AFTER, Database, create_engine
from counseldesk.db.pool import FairAsyncQueuePool, FairQueue
from counseldesk.db.urls import to_asyncpg_url
from tests.conftest import make_settings


async def _get(queue: FairQueue[str], within: float | None = None) -> str:
    # The pool calls the queue inside SQLAlchemy's greenlet; so do the tests.
    return await greenlet_spawn(queue.get, True, within)


async def _waiting(queue: FairQueue[str], count: int) -> None:
    for _ in range(100):
        if len(queue._waiters) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} waiters never lined up")


async def test_an_idle_item_is_taken_at_once_in_order() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=2)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert queue.full()
    assert await _get(queue) == "a"
    assert queue.get_nowait() == "b"
    with pytest.raises(Empty):
        queue.get_nowait()


async def test_a_returned_item_goes_to_the_first_waiter_not_to_a_newcomer() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    first = asyncio.create_task(_get(queue, 5))
    second = asyncio.create_task(_get(queue, 5))
    await _waiting(queue, 2)

    queue.put_nowait("connection")
    # Someone arriving now, before the first waiter has run, finds nothing idle: the returned
    # connection already belongs to the first in line.
    with pytest.raises(Empty):
        queue.get_nowait()
    assert await first == "connection"
    assert not second.done()

    queue.put_nowait("connection")
    assert await second == "connection"
    assert queue.qsize() == 0


async def test_a_waiter_that_times_out_leaves_the_line() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    with pytest.raises(Empty):
        await _get(queue, 0.01)
    assert not queue._waiters
    queue.put_nowait("connection")  # nobody waits: it stays idle
    assert queue.qsize() == 1


async def test_an_item_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    first = asyncio.create_task(_get(queue, 5))
    second = asyncio.create_task(_get(queue, 5))
    await _waiting(queue, 2)

    queue.put_nowait("connection")  # handed to the first waiter...
    first.cancel()  # ...whose request is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "connection"


async def test_the_engine_serves_waiting_requests_in_arrival_order(database_url: str) -> None:
    engine = create_async_engine(
        to_asyncpg_url(database_url),
        poolclass=FairAsyncQueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=5,
    )
    order: list[int] = []

    async def request(number: int) -> None:
        async with engine.connect() as conn:
            order.append(number)
            await conn.execute(text("SELECT pg_sleep(0.01)"))

    try:
        async with engine.connect() as holder:  # the only connection, lent out
            tasks = []
            for number in range(5):
                tasks.append(asyncio.create_task(request(number)))
                await asyncio.sleep(0.005)  # each arrives after the one before
            await holder.execute(text("SELECT 1"))
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]

        # With the line full, a request that cannot get a connection in time is refused.
        engine.pool._timeout = 0.05  # type: ignore[attr-defined]
        async with engine.connect():
            with pytest.raises(PoolTimeout):
                async with engine.connect():
                    pass
    finally:
        await engine.dispose()


async def test_the_application_engine_uses_it(database_url: str) -> None:
    engine = create_engine(database_url, make_settings())
    try:
        assert isinstance(engine.pool, FairAsyncQueuePool)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_the_application_engine_neither_starts_workers_nor_compiles(
    database_url: str,
) -> None:
    # Its statements read a page's worth of rows: parallel workers and JIT compilation cost
    # more than they do (db/engine.py).
    engine = create_engine(database_url, make_settings())
    try:
        async with engine.connect() as conn:
            settings = text(
                "SELECT current_setting('max_parallel_workers_per_gather'), current_setting('jit')"
            )
            assert tuple((await conn.execute(settings)).one()) == ("0", "off")
    finally:
        await engine.dispose()


async def test_connections_are_replaced_each_at_an_age_of_its_own(database_url: str) -> None:
    # Connections opened together must not all be replaced together (db/engine.py): each is
    # given an age between three quarters of the maximum and all of it, and replaced at the
    # first checkout after it, by a reader or a session alike.
    max_age = 1.0
    settings = make_settings(db_pool_max=8, db_connection_max_age=max_age)
    db = Database.from_url(database_url, settings)
    backend = text("SELECT pg_backend_pid()")
    try:
        async with contextlib.AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(db.engine.connect()) for _ in range(8)]
            opened = [await conn.scalar(backend) for conn in connections]
            records = [(await conn.get_raw_connection())._connection_record for conn in connections]
            ages = [record.info[_REPLACE_AFTER] - time.monotonic() for record in records]
        assert len(set(opened)) == 8
        assert all(0.75 * max_age - 0.1 < age <= max_age for age in ages), ages
        assert max(ages) - min(ages) > 0.01  # each its own
        await asyncio.sleep(max_age + 0.05)
        async with db.reader() as reader:
            [(pid,)] = await reader.fetch(backend, {})
        async with db.sessionmaker() as session:
            assert await session.scalar(backend) not in opened
        assert pid not in opened
    finally:
        await db.dispose()

"""A connection pool that serves waiting requests in the order they came.

SQLAlchemy's asyncio pool keeps its idle connections in an `asyncio.Queue`. When every
connection is lent out, a request waits in the queue's line, but a returned connection is not
handed to the first waiter: it is put back in the queue and the waiter is only woken. A request
that arrives before the woken one runs takes it (`get` takes an idle connection without
waiting), and the woken one, finding the queue empty again, goes to the back of the line. Under
steady load some requests lose that race again and again.

Measured on the benchmark database (docs/benchmarks.md, session 9): 32 clients spread 18 and
14 over two web processes with 16 connections each, so the busier process always had two
requests waiting. A rare word's search had a p99 of 370-830 ms over five runs of 4 s, against
67-152 ms with 32 connections each (nobody waits).

`FairQueue` hands a returned connection straight to the longest-waiting request; a newcomer
only takes an idle connection when nobody is waiting. The wait is then first come, first served,
and bounded by the line ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_only
from sqlalchemy.util.queue import Empty, Full, QueueCommon

_T = TypeVar("_T")


class FairQueue(QueueCommon[_T]):
    """The pool's idle connections and, when there are none, the requests waiting for one.

    Called from SQLAlchemy's pool inside its greenlet, on the event loop's thread: `get` waits
    with `await_only`. Never both idle items and live waiters at once: `put_nowait` gives an item
    to a waiter if there is one.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[_T] = deque()
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # not timed out or cancelled meanwhile
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        # The pool only gives back what it lent: there is always room.
        self.put_nowait(item)

    def get_nowait(self) -> _T:
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        if self._items or not block:
            return self.get_nowait()
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await_only(self._wait(waiter, timeout))

    async def _wait(self, waiter: asyncio.Future[_T], seconds: float | None) -> _T:
        try:
            # `wait` (unlike `wait_for`) never cancels the waiter itself, so a connection handed
            # over just as the time runs out is still seen below.
            await asyncio.wait((waiter,), timeout=seconds)
        except BaseException:
            self._give_up(waiter)  # the request was cancelled while it waited
            raise
        if waiter.done():
            return waiter.result()
        self._give_up(waiter)
        raise Empty()

    def _give_up(self, waiter: asyncio.Future[_T]) -> None:
        """The waiter leaves the line; a connection already handed to it goes to the next."""
        if waiter.done():
            if not waiter.cancelled():
                self.put_nowait(waiter.result())
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):  # put_nowait already dropped it
            self._waiters.remove(waiter)


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, with waiting requests served first come, first served."""

    _queue_class: Any = FairQueue

"""The outbox worker: sends due notifications to Telegram, each at most once.

One round (`run_once`):
1. Claim: in one short transaction, lock due pending rows with FOR UPDATE SKIP LOCKED (so any
   number of workers share the queue without waiting on each other), mark them SENDING with
   `claimed_at`, count the attempt, commit.
2. Send, at the global rate, one chat's rows in order and different chats side by side.
3. Record each outcome in its own short transaction: SENT; back to PENDING with backoff (a
   transient error); FAILED (400, 403, retries exhausted, delivery unknown); or, for Telegram's
   flood control (429), back to PENDING uncounted while all sending pauses for `retry_after`.

Why at most once: a row is handed to Telegram only while this worker's claim on it is fresh
(younger than half the lease), and a send is cut off after `send_timeout` (< half the lease), so
no live worker is still sending a row whose lease has run out. Rows still SENDING after the lease
therefore belong to a worker that died mid-send: the sweep marks them FAILED ("delivery unknown")
and nobody sends them again. Telegram has no idempotency key, so "exactly once" is out of reach;
the choice made here is that a failure is visible and a duplicate never happens. Rows a worker
claimed but never started to send are handed back when it stops (or is cancelled), so a graceful
shutdown loses nothing and fails nothing.

`run(stop)` repeats rounds, woken by LISTEN/NOTIFY at once, by a timer for the next scheduled
row, and by a fallback poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.db.engine import Database
from counseldesk.telegram import outbox_store as store
from counseldesk.telegram.outbox import OUTBOX_CHANNEL
from counseldesk.telegram.outbox_listener import OutboxListener, listen_dsn, wait_first
from counseldesk.telegram.outbox_send import SendResult, Verdict, send_payload
from counseldesk.telegram.outbox_store import ClaimedRow, FindUnreachable
from counseldesk.telegram.rate_limit import LocalRateLimiter, SendRateLimiter

log = logging.getLogger(__name__)

# Told when Telegram answers 403 for a user (inside the unit of work that fails the row); the
# composition layer marks the student unreachable. telegram/ does not import features.
OnUnreachable = Callable[[AsyncSession, int], Awaitable[object]]


@dataclass
class BatchResult:
    """What one round did, for logs and tests."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    rate_limited: bool = False


@dataclass
class _Batch:
    rows: list[ClaimedRow]
    claim_started: float  # loop time
    result: BatchResult
    # Claimed rows not yet handed to Telegram nor settled: handed back when the round ends.
    untouched: dict[int, ClaimedRow] = field(default_factory=dict)
    halted: bool = False  # a 429 or a stale claim: send nothing more this round

    def by_chat(self) -> list[list[ClaimedRow]]:
        chats: dict[int, list[ClaimedRow]] = {}
        for row in self.rows:
            chats.setdefault(row.telegram_user_id, []).append(row)
        return list(chats.values())


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        bot: Bot,
        *,
        limiter: SendRateLimiter | None = None,
        on_unreachable: OnUnreachable | None = None,
        find_unreachable: FindUnreachable | None = None,
        batch_size: int = 50,
        lease: float = 60.0,
        send_timeout: float | None = None,
        max_attempts: int = 5,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
        poll_interval: float = 5.0,
        max_in_flight: int = 8,
        listen: bool = True,
        clock: Callable[[], datetime] | None = None,
    ):
        """`limiter` defaults to an in-process 25 messages/s. `lease`: how long a claimed row may
        stay SENDING before the sweep declares its delivery unknown; `send_timeout` (default a
        third of the lease) must stay under half of it. `listen=False` leaves out LISTEN/NOTIFY
        (the timers still run). `clock` replaces the database's clock for deciding which rows are
        due and expired (tests that move time)."""
        self._send_timeout = lease / 3 if send_timeout is None else send_timeout
        if self._send_timeout >= lease / 2:
            raise ValueError("send_timeout must be shorter than half the lease")
        self._db = db
        self._bot = bot
        self._clock = clock
        self._limiter = limiter if limiter is not None else LocalRateLimiter(25.0)
        self._on_unreachable = on_unreachable
        self._find_unreachable = find_unreachable
        self._batch_size = batch_size
        self._lease = lease
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._poll_interval = poll_interval
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._listener = (
            OutboxListener(listen_dsn(db.engine.url), OUTBOX_CHANNEL, self.wake) if listen else None
        )

    @property
    def listening(self) -> asyncio.Event:
        """Set while LISTEN is active."""
        if self._listener is None:
            raise RuntimeError("this worker does not listen")
        return self._listener.listening

    def wake(self) -> None:
        """Start the next round now (a notification was enqueued)."""
        self._wake.set()

    # --- one round ------------------------------------------------------------------------

    async def run_once(self) -> BatchResult:
        """Claim one batch of due rows, send them and record every outcome."""
        paused = await self._limiter.paused_for()
        if paused > 0:  # claiming now would only let the claims age
            await asyncio.sleep(paused)
        # Taken before the claim: its `claimed_at` (the transaction's start) is no earlier, so
        # the age measured from here is never less than the age the sweep will see.
        claim_started = asyncio.get_running_loop().time()
        async with self._db.unit_of_work() as session:
            rows = await store.claim_due(
                session,
                limit=self._batch_size,
                find_unreachable=self._find_unreachable,
                now=self._clock() if self._clock is not None else None,
            )
        if not rows:
            return BatchResult()
        batch = _Batch(
            rows=rows,
            claim_started=claim_started,
            result=BatchResult(claimed=len(rows)),
            untouched={row.id: row for row in rows},
        )
        try:
            async with asyncio.TaskGroup() as group:
                for chat_rows in batch.by_chat():
                    group.create_task(self._send_chat(chat_rows, batch))
        finally:
            # Also on cancellation: rows nobody started to send go back to the queue. A row in
            # flight stays SENDING: Telegram may have it, the sweep decides after the lease.
            if batch.untouched:
                await asyncio.shield(self._release(batch))
        counts = batch.result
        level = logging.DEBUG if counts.sent == counts.claimed else logging.INFO
        log.log(level, "outbox round: %s", counts)
        return counts

    async def _send_chat(self, rows: list[ClaimedRow], batch: _Batch) -> None:
        """One student's rows, strictly one after the other, so they arrive in order."""
        loop = asyncio.get_running_loop()
        for index, row in enumerate(rows):
            if batch.halted:
                return
            async with self._in_flight:
                await self._limiter.acquire()
                if loop.time() - batch.claim_started > self._lease / 2:
                    # Sending now could outlive the lease and race the sweep; re-claim instead.
                    batch.halted = True
                if batch.halted:
                    return
                del batch.untouched[row.id]
                result = await send_payload(
                    self._bot, row.telegram_user_id, row.payload, send_timeout=self._send_timeout
                )
            if result.verdict is Verdict.RATE_LIMITED:
                # Flood control counts the bot, not the chat: every send stops, here and (through
                # a shared limiter) in every other worker.
                batch.halted = True
                log.warning("Telegram flood control: all sends pause %.0f s", result.retry_after)
                await self._limiter.pause(result.retry_after)
            await self._record(row, result, batch)
            if result.verdict is Verdict.RATE_LIMITED:
                return
            if result.verdict is Verdict.UNREACHABLE:
                rest = rows[index + 1 :]
                for later in rest:
                    del batch.untouched[later.id]
                await self._settle(batch, failed=rest, error=store.UNREACHABLE_ERROR)
                return

    # --- outcomes -------------------------------------------------------------------------

    async def _record(self, row: ClaimedRow, result: SendResult, batch: _Batch) -> None:
        verdict, error = result.verdict, result.error or result.verdict.value
        counts = batch.result
        try:
            async with self._db.unit_of_work() as session:
                if verdict is Verdict.SENT:
                    assert result.message_id is not None
                    await store.mark_sent(session, row, result.message_id)
                    counts.sent += 1
                elif verdict is Verdict.RATE_LIMITED:  # not a failed attempt: it was refused unseen
                    counts.released += await store.release(session, [row])
                    counts.rate_limited = True
                elif verdict is Verdict.RETRY and row.attempts < self._max_attempts:
                    await store.mark_retry(
                        session, row, delay=self._backoff(row.attempts), error=error
                    )
                    counts.retried += 1
                else:
                    if verdict is Verdict.RETRY:
                        error = f"{error} (gave up after {row.attempts} attempts)"
                    counts.failed += await store.mark_failed(session, [row], error)
                    # The row shows "failed" where it was sent from; the log says why, for
                    # whoever runs the system.
                    log.warning(
                        "notification %s (%s) to %s failed: %s",
                        row.id,
                        row.kind,
                        row.telegram_user_id,
                        error,
                    )
                    if verdict is Verdict.UNREACHABLE and self._on_unreachable is not None:
                        await self._on_unreachable(session, row.telegram_user_id)
        except Exception:
            # The row stays SENDING; after the lease the sweep fails it as "delivery unknown",
            # which is true from where we stand.
            log.exception("recording the outcome of notification %s failed", row.id)

    async def _settle(self, batch: _Batch, *, failed: list[ClaimedRow], error: str) -> None:
        if not failed:
            return
        try:
            async with self._db.unit_of_work() as session:
                batch.result.failed += await store.mark_failed(session, failed, error)
        except Exception:
            log.exception("failing %d notifications failed", len(failed))

    async def _release(self, batch: _Batch) -> None:
        rows = list(batch.untouched.values())
        batch.untouched.clear()
        try:
            async with self._db.unit_of_work() as session:
                batch.result.released += await store.release(session, rows)
        except Exception:
            log.exception("handing back %d unsent notifications failed", len(rows))

    def _backoff(self, attempts: int) -> float:
        """Exponential, capped, with jitter so that rows failed together do not retry together."""
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** (attempts - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - spreading load, not secrecy

    # --- the long-running loop ------------------------------------------------------------

    async def sweep(self) -> int:
        """Fail rows whose worker died while sending them (SENDING for longer than the lease)."""
        async with self._db.unit_of_work() as session:
            swept = await store.sweep_interrupted(session, lease=self._lease)
        if swept:
            log.warning("%d notifications were interrupted while sending: marked failed", swept)
        return swept

    async def _next_wait(self) -> float:
        async with self._db.unit_of_work() as session:
            due_in = await store.seconds_until_next_due(session)
        if due_in is None:
            return self._poll_interval
        return min(max(due_in, 0.01), self._poll_interval)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; the round in progress finishes first."""
        loop = asyncio.get_running_loop()
        listener = (
            asyncio.create_task(self._listener.run(stop), name="outbox-listener")
            if self._listener is not None
            else None
        )
        next_sweep = 0.0
        failures = 0
        log.info("outbox worker started")
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    paused = await self._limiter.paused_for()
                    if paused > 0:
                        await wait_first(stop, seconds=paused)
                        continue
                    if loop.time() >= next_sweep:
                        await self.sweep()
                        next_sweep = loop.time() + self._lease / 2
                    result = await self.run_once()
                    failures = 0
                    if result.claimed >= self._batch_size or result.rate_limited:
                        continue  # more is due (or waits only for the pause)
                    wait = await self._next_wait()
                except Exception:
                    failures += 1
                    wait = min(2.0**failures, 30.0)
                    log.exception("outbox round failed; trying again in %.0f s", wait)
                wait = min(wait, max(next_sweep - loop.time(), 0.0))
                await wait_first(stop, self._wake, seconds=wait)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            log.info("outbox worker stopped")

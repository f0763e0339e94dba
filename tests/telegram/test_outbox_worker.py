"""The outbox worker against the Telegram emulator and a real PostgreSQL.

The worker's guarantees rest on real transactions (SKIP LOCKED, LISTEN/NOTIFY, one commit per
outcome), which the rolled-back `db` fixture cannot give, so these tests use their own Database
on the migrated test database and delete the rows they made. Every test talks to its own fresh
emulator users, whose ids are never reused within a run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram import Bot
from redis.asyncio import Redis
from sqlalchemy import delete, select, text

from counseldesk.db.engine import Database
from counseldesk.realtime.events import Event
from counseldesk.runtime import Runtime
from counseldesk.students.models import Student
from counseldesk.students.service import do_mark_unreachable, get_unreachable_ids
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.telegram.models import Notification, NotificationStatus
from counseldesk.telegram.outbox import do_enqueue
from counseldesk.telegram.outbox_store import INTERRUPTED_ERROR, UNREACHABLE_ERROR, due_rows
from counseldesk.telegram.outbox_worker import OutboxWorker
from counseldesk.telegram.rate_limit import LocalRateLimiter, RedisRateLimiter
from counseldesk.worker import run_worker
from tests.conftest import make_settings
from tests.factories import make_student

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def outbox_db(database_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(database_url, make_settings())
    yield db
    await db.dispose()


class Outbox:
    """The test's handle: make users, queue messages, read rows back; cleans up after itself."""

    def __init__(self, db: Database, emulator: EmulatorServer, bot: Bot):
        self.db = db
        self.emulator = emulator
        self.state = emulator.state
        self.bot = bot
        self.user_ids: list[int] = []
        self.events: list[Event] = []
        self.workers: list[OutboxWorker] = []

    def user(self) -> int:
        user_id = self.state.create_user().id
        self.user_ids.append(user_id)
        return user_id

    async def student(self) -> int:
        user_id = self.user()
        async with self.db.unit_of_work() as session:
            await make_student(session, telegram_user_id=user_id)
        return user_id

    async def enqueue(
        self,
        user_id: int,
        text: str,
        *,
        reply_markup: dict[str, Any] | None = None,
        scheduled_for: datetime | None = None,
        ref: dict[str, Any] | None = None,
    ) -> int:
        async with self.db.unit_of_work() as session:
            row = await do_enqueue(
                session,
                kind="test",
                telegram_user_id=user_id,
                text=text,
                reply_markup=reply_markup,
                scheduled_for=scheduled_for,
                ref=ref,
            )
        return row.id

    async def enqueue_many(self, texts_by_user: dict[int, list[str]]) -> None:
        async with self.db.unit_of_work() as session:
            for user_id, texts in texts_by_user.items():
                for body in texts:
                    await do_enqueue(session, kind="test", telegram_user_id=user_id, text=body)

    async def rows(self) -> list[Notification]:
        async with self.db.unit_of_work() as session:
            result = await session.scalars(
                select(Notification)
                .where(Notification.telegram_user_id.in_(self.user_ids))
                .order_by(Notification.id)
            )
            return list(result.all())

    async def row(self, notification_id: int) -> Notification:
        async with self.db.unit_of_work() as session:
            row = await session.get(Notification, notification_id)
            assert row is not None
            return row

    def worker(self, **options: Any) -> OutboxWorker:
        options.setdefault("listen", False)
        options.setdefault("backoff_base", 0.05)
        options.setdefault("find_unreachable", get_unreachable_ids)
        options.setdefault("on_unreachable", do_mark_unreachable)
        worker = OutboxWorker(self.db, self.bot, **options)
        self.workers.append(worker)
        return worker

    def sends(self, *, ok: bool | None = None) -> list[dict[str, Any]]:
        calls = self.state.calls.after(0, "sendMessage")
        if ok is None:
            return calls
        return [call for call in calls if (call["status"] == 200) is ok]

    def delivered(self) -> Counter[str]:
        """How many times Telegram accepted each text."""
        return Counter(call["params"]["text"] for call in self.sends(ok=True))

    async def cleanup(self) -> None:
        async with self.db.unit_of_work() as session:
            await session.execute(
                delete(Notification).where(Notification.telegram_user_id.in_(self.user_ids))
            )
            await session.execute(
                delete(Student).where(Student.telegram_user_id.in_(self.user_ids))
            )


@pytest.fixture
async def outbox(outbox_db: Database, emulator: EmulatorServer, bot: Bot) -> AsyncIterator[Outbox]:
    handle = Outbox(outbox_db, emulator, bot)

    async def sink(events: list[Event]) -> None:
        handle.events.extend(events)

    outbox_db.event_sink = sink
    try:
        yield handle
    finally:
        outbox_db.event_sink = None
        await handle.cleanup()


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 2.0, every: float = 0.01
) -> float:
    """Poll `check` until it holds; the seconds it took (fails the test after `within`)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def drain(worker: OutboxWorker, outbox: Outbox, *, within: float = 5.0) -> None:
    """Run rounds until none of the test's rows is pending or sending."""
    deadline = time.monotonic() + within
    while True:
        rows = await outbox.rows()
        if all(
            r.status not in (NotificationStatus.PENDING, NotificationStatus.SENDING) for r in rows
        ):
            return
        assert time.monotonic() < deadline, Counter(r.status for r in rows)
        result = await worker.run_once()
        if not result.claimed:
            await asyncio.sleep(0.02)  # only rows waiting for their backoff remain


# --- sending ---------------------------------------------------------------------------------


async def test_a_queued_row_is_sent_with_its_text_and_markup_and_marked_sent(
    outbox: Outbox,
) -> None:
    user = outbox.user()
    markup = {"inline_keyboard": [[{"text": "Open", "callback_data": "ticket:7"}]]}
    notification_id = await outbox.enqueue(
        user, "<b>Hello</b> from the office", reply_markup=markup, ref={"ticket_id": 7}
    )

    result = await outbox.worker().run_once()

    assert (result.claimed, result.sent) == (1, 1)
    (message,) = [e for e in outbox.state.chat_feed(user)["entries"] if e["direction"] == "out"]
    assert message["text"] == "Hello from the office"  # HTML parsed, as Telegram does
    assert message["html"] == "<b>Hello</b> from the office"
    assert message["reply_markup"] == markup
    row = await outbox.row(notification_id)
    assert row.status is NotificationStatus.SENT
    assert row.telegram_message_id == message["message_id"]
    assert row.sent_at is not None and row.attempts == 1 and row.last_error is None
    # The dashboard hears each change, with the feature's ref to place it.
    assert [(e.type, e.data["status"]) for e in outbox.events] == [
        ("notification.updated", "sending"),
        ("notification.updated", "sent"),
    ]
    assert outbox.events[-1].data == {
        "notification_id": notification_id,
        "status": "sent",
        "kind": "test",
        "ref": {"ticket_id": 7},
        "error": None,
    }


async def test_nothing_is_sent_for_a_rolled_back_transaction(outbox: Outbox) -> None:
    user = outbox.user()

    async def change_that_fails() -> None:
        async with outbox.db.unit_of_work() as session:
            await do_enqueue(session, kind="test", telegram_user_id=user, text="never")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()

    result = await outbox.worker().run_once()

    assert result.claimed == 0
    assert await outbox.rows() == []
    assert outbox.sends() == []


async def test_one_students_messages_arrive_in_the_order_they_were_queued(
    outbox: Outbox,
) -> None:
    user = outbox.user()
    await outbox.enqueue_many({user: [f"part {i}" for i in range(6)]})

    await outbox.worker().run_once()

    texts = [e["text"] for e in outbox.state.chat_feed(user)["entries"] if e["direction"] == "out"]
    assert texts == [f"part {i}" for i in range(6)]


async def test_two_workers_share_the_queue_and_send_each_row_once(outbox: Outbox) -> None:
    users = [outbox.user() for _ in range(8)]
    await outbox.enqueue_many({u: [f"{u}-{i}" for i in range(5)] for u in users})
    first = outbox.worker(batch_size=10, limiter=LocalRateLimiter(500))
    second = outbox.worker(batch_size=10, limiter=LocalRateLimiter(500))

    for _ in range(2):
        a, b = await asyncio.gather(first.run_once(), second.run_once())
        assert a.claimed and b.claimed  # SKIP LOCKED: neither waited for the other's rows

    assert set(outbox.delivered().values()) == {1} and len(outbox.delivered()) == 40
    assert {r.status for r in await outbox.rows()} == {NotificationStatus.SENT}


async def test_the_claim_is_served_by_the_partial_due_index(outbox: Outbox) -> None:
    async with outbox.db.unit_of_work() as session:
        # A small test table makes a sequential scan cheapest; forbidding it shows whether the
        # partial index's predicate matches the claim's WHERE at all.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        sql = str(due_rows(50).compile(compile_kwargs={"literal_binds": True}))
        plan = "\n".join((await session.scalars(text("EXPLAIN " + sql))).all())
    assert "ix_notifications_due" in plan, plan


# --- rate limits -----------------------------------------------------------------------------


async def test_the_default_rate_stays_under_telegrams_limit(outbox: Outbox) -> None:
    outbox.state.config.rate_limit_per_second = 30
    users = [outbox.user() for _ in range(10)]
    await outbox.enqueue_many({u: [f"{u}-{i}" for i in range(6)] for u in users})
    worker = outbox.worker()  # 25 messages/s

    started = time.monotonic()
    await drain(worker, outbox)
    took = time.monotonic() - started

    assert outbox.sends(ok=False) == []  # not one 429
    assert len(outbox.delivered()) == 60 and set(outbox.delivered().values()) == {1}
    assert took >= 59 / 25 - 0.05


async def test_a_rate_above_telegrams_meets_429s_and_honours_retry_after(outbox: Outbox) -> None:
    outbox.state.config.rate_limit_per_second = 30
    users = [outbox.user() for _ in range(12)]
    texts = {u: [f"{u}-{i}" for i in range(5)] for u in users}
    await outbox.enqueue_many(texts)
    worker = outbox.worker(limiter=LocalRateLimiter(60))

    await drain(worker, outbox, within=8)

    refused = outbox.sends(ok=False)
    assert refused and {call["status"] for call in refused} == {429}
    # Every message delivered exactly once, and the refusals cost no attempt.
    assert outbox.delivered() == Counter(t for ts in texts.values() for t in ts)
    assert {(r.status, r.attempts) for r in await outbox.rows()} == {(NotificationStatus.SENT, 1)}
    # After a 429, nothing is sent until retry_after has passed (requests already in flight
    # when the answer came may land in the first few milliseconds).
    sends = outbox.sends()
    for call in refused:
        retry_after = call["parameters"]["retry_after"]
        quiet = [
            c for c in sends if call["time"] + 0.1 < c["time"] < call["time"] + retry_after - 0.05
        ]
        assert quiet == [], (call, quiet)


# --- failures --------------------------------------------------------------------------------


async def test_403_marks_the_student_unreachable_and_their_later_rows_are_skipped(
    outbox: Outbox,
) -> None:
    student = await outbox.student()
    other = await outbox.student()
    outbox.state.block(student)
    first = await outbox.enqueue(student, "are you there?")
    second = await outbox.enqueue(student, "second try")
    fine = await outbox.enqueue(other, "hello")
    worker = outbox.worker()

    await worker.run_once()

    blocked = await outbox.row(first)
    assert blocked.status is NotificationStatus.FAILED
    assert blocked.last_error == "Forbidden: bot was blocked by the user"
    skipped = await outbox.row(second)
    assert (skipped.status, skipped.last_error) == (NotificationStatus.FAILED, UNREACHABLE_ERROR)
    assert (await outbox.row(fine)).status is NotificationStatus.SENT
    async with outbox.db.unit_of_work() as session:
        reachable = dict(
            (await session.execute(select(Student.telegram_user_id, Student.is_reachable))).all()
        )
    assert (reachable[student], reachable[other]) == (False, True)

    later = await outbox.enqueue(student, "a reply days later")
    result = await worker.run_once()

    assert result.claimed == 0  # failed at the claim, never handed to Telegram
    assert (await outbox.row(later)).last_error == UNREACHABLE_ERROR
    assert [
        c["params"]["text"] for c in outbox.sends() if c["params"]["chat_id"] == str(student)
    ] == ["are you there?"]


async def test_a_transient_error_is_retried_with_backoff_and_then_sent(outbox: Outbox) -> None:
    user = outbox.user()
    outbox.state.faults.add("sendMessage", count=2, error_code=502)
    notification_id = await outbox.enqueue(user, "eventually")
    worker = outbox.worker(backoff_base=0.2)

    result = await worker.run_once()

    assert result.retried == 1
    row = await outbox.row(notification_id)
    assert (row.status, row.attempts, row.last_error) == (
        NotificationStatus.PENDING,
        1,
        "Bad Gateway",
    )
    assert (await worker.run_once()).claimed == 0  # not due before its backoff
    await drain(worker, outbox)

    row = await outbox.row(notification_id)
    assert (row.status, row.attempts) == (NotificationStatus.SENT, 3)
    times = [call["time"] for call in outbox.sends()]
    assert len(times) == 3
    # Backoff with jitter: attempt n waits between half and all of 0.2 * 2**(n-1) seconds.
    assert times[1] - times[0] >= 0.1 - 0.02
    assert times[2] - times[1] >= 0.2 - 0.02


async def test_retries_end_failed_after_the_last_attempt(outbox: Outbox) -> None:
    user = outbox.user()
    outbox.state.faults.add("sendMessage", count=10, error_code=500)
    notification_id = await outbox.enqueue(user, "never makes it")

    await drain(outbox.worker(max_attempts=3, backoff_base=0.02), outbox)

    row = await outbox.row(notification_id)
    assert row.status is NotificationStatus.FAILED
    assert row.last_error == "Internal Server Error (gave up after 3 attempts)"
    assert len(outbox.sends()) == 3


async def test_a_400_fails_the_row_with_telegrams_description(outbox: Outbox) -> None:
    user = outbox.user()
    outbox.state.faults.add("sendMessage", error_code=400, description="Bad Request: can't parse")
    notification_id = await outbox.enqueue(user, "<b>broken")

    await outbox.worker().run_once()

    row = await outbox.row(notification_id)
    assert (row.status, row.last_error) == (NotificationStatus.FAILED, "Bad Request: can't parse")
    assert outbox.events[-1].data["error"] == "Bad Request: can't parse"


async def test_a_crash_mid_send_never_sends_twice_and_loses_nothing_else(outbox: Outbox) -> None:
    slow, others = outbox.user(), outbox.user()
    outbox.state.faults.add("sendMessage", chat_id=slow, delay=1.0)  # succeeds, but late
    in_flight = await outbox.enqueue(slow, "in flight when the worker died")
    behind = await outbox.enqueue(slow, "queued behind the slow one")
    await outbox.enqueue_many({others: [f"other {i}" for i in range(4)]})

    doomed = outbox.worker(lease=10)
    task = asyncio.create_task(doomed.run_once())
    await wait_until(lambda: _count_sent(outbox, 4))
    task.cancel()  # the worker dies while Telegram is still busy with the slow send
    with pytest.raises(asyncio.CancelledError):
        await task

    assert (await outbox.row(in_flight)).status is NotificationStatus.SENDING
    # What it never started is back in the queue, uncounted.
    behind_row = await outbox.row(behind)
    assert (behind_row.status, behind_row.attempts) == (NotificationStatus.PENDING, 0)

    restarted = outbox.worker(lease=0.5)
    await restarted.run_once()
    assert await restarted.sweep() == 0  # the lease is not over yet
    await asyncio.sleep(0.5)
    assert await restarted.sweep() == 1

    row = await outbox.row(in_flight)
    assert (row.status, row.last_error) == (NotificationStatus.FAILED, INTERRUPTED_ERROR)
    assert (await outbox.row(behind)).status is NotificationStatus.SENT
    await asyncio.sleep(0.6)  # the slow send completes on Telegram's side after all
    assert set(outbox.delivered().values()) == {1}
    assert len(outbox.delivered()) == 6  # all four others, the one behind, the slow one (once)
    assert (await restarted.run_once()).claimed == 0  # and nothing is left to send


async def _count_sent(outbox: Outbox, n: int) -> bool:
    rows = await outbox.rows()
    return sum(r.status is NotificationStatus.SENT for r in rows) >= n


# --- waking up -------------------------------------------------------------------------------


async def test_a_scheduled_row_is_not_sent_early_but_is_sent_when_due(outbox: Outbox) -> None:
    user = outbox.user()
    due = datetime.now(UTC) + timedelta(seconds=0.6)
    notification_id = await outbox.enqueue(user, "reminder", scheduled_for=due)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.worker(poll_interval=5).run(stop))
    try:
        await asyncio.sleep(0.4)
        assert outbox.sends() == []

        await wait_until(lambda: _is_sent(outbox, notification_id), within=1.0)
    finally:
        stop.set()
        await task
    # The timer for the next due row woke the worker, not the 5 s poll.
    sent_at = (await outbox.row(notification_id)).sent_at
    assert sent_at is not None and due <= sent_at < due + timedelta(seconds=0.3)


async def test_notify_wakes_the_running_worker_at_once(outbox: Outbox) -> None:
    user = outbox.user()
    worker = outbox.worker(listen=True, poll_interval=5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(worker.listening.wait(), timeout=2)
        await asyncio.sleep(0.1)  # let the round the connect triggered go back to sleep
        notification_id = await outbox.enqueue(user, "right now")
        took = await wait_until(lambda: _is_sent(outbox, notification_id), within=2, every=0.002)
    finally:
        stop.set()
        await task
    assert took < 0.5, took  # milliseconds in practice; the fallback poll is 5 s


async def _is_sent(outbox: Outbox, notification_id: int) -> bool:
    return (await outbox.row(notification_id)).status is NotificationStatus.SENT


async def test_run_worker_sends_the_outbox_with_the_students_hooks(outbox: Outbox) -> None:
    """The composition `counseldesk worker` runs: settings, bot, limiter and students' hooks."""
    settings = make_settings(emulator_port=outbox.emulator.port, outbox_rate_per_second=100)
    runtime = Runtime(settings=settings, db=outbox.db)
    student, blocked = await outbox.student(), await outbox.student()
    outbox.state.block(blocked)
    hello = await outbox.enqueue(student, "hello from the worker")
    refused = await outbox.enqueue(blocked, "never arrives")
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(runtime, stop))
    try:
        await wait_until(lambda: _is_sent(outbox, hello))
        await wait_until(lambda: _status_is(outbox, refused, NotificationStatus.FAILED), within=1)
    finally:
        stop.set()
        await task
        await runtime.bus.close()
    async with outbox.db.unit_of_work() as session:
        reachable = await session.scalar(
            select(Student.is_reachable).where(Student.telegram_user_id == blocked)
        )
    assert reachable is False


async def _status_is(outbox: Outbox, notification_id: int, status: NotificationStatus) -> bool:
    return (await outbox.row(notification_id)).status is status


# --- the limiters ----------------------------------------------------------------------------


def _max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


async def _acquire_times(limiter: LocalRateLimiter | RedisRateLimiter, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire()
        times.append(time.monotonic())
    return times


async def test_the_local_limiter_spaces_sends_and_pauses() -> None:
    limiter = LocalRateLimiter(50)
    times = await _acquire_times(limiter, 10)
    assert times[-1] - times[0] >= 9 / 50 - 0.01

    await limiter.pause(0.3)
    assert 0.2 < await limiter.paused_for() <= 0.3
    started = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - started >= 0.29


@pytest.mark.redis
async def test_two_redis_limiters_together_stay_under_the_rate(redis: Redis) -> None:
    a = RedisRateLimiter(redis, 20, key="test:outbox-rate")
    b = RedisRateLimiter(redis, 20, key="test:outbox-rate")

    started = time.monotonic()
    times_a, times_b = await asyncio.gather(_acquire_times(a, 15), _acquire_times(b, 15))
    took = time.monotonic() - started

    assert took >= 29 / 20 - 0.05  # 30 sends at 20/s, shared, not 20/s each
    assert _max_in_any_second(times_a + times_b) <= 21

    await a.pause(0.3)  # a 429 seen by one worker stops the other as well
    assert await b.paused_for() > 0.2
    started = time.monotonic()
    await b.acquire()
    assert time.monotonic() - started >= 0.25

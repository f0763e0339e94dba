"""The realtime bus, both implementations: live delivery, replay after a reconnect, resync when
history no longer reaches back, heartbeats, shutdown, and publishing only after commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.realtime.bus import (
    KEEPALIVE,
    READY,
    RESYNC,
    EventBus,
    LocalEventBus,
    RedisEventBus,
)
from counseldesk.realtime.events import Event, emit
from counseldesk.realtime.log import EventId
from counseldesk.runtime import Runtime
from counseldesk.support import service
from tests.factories import make_student

Subscription = AsyncGenerator[tuple[str, Event], None]
TEST_KEY = "counseldesk:test-events"


def make_bus(redis: Redis | None, *, history: int = 1_000, heartbeat: float = 15.0) -> EventBus:
    if redis is None:
        return LocalEventBus(history=history, heartbeat_seconds=heartbeat)
    return RedisEventBus(redis, key=TEST_KEY, history=history, heartbeat_seconds=heartbeat)


@pytest.fixture
async def bus(redis_or_none: Redis | None) -> AsyncIterator[EventBus]:
    bus = make_bus(redis_or_none)
    yield bus
    await bus.close()


async def next_item(subscription: Subscription) -> tuple[str, Event]:
    async with asyncio.timeout(5):
        return await anext(subscription)


async def take(subscription: Subscription, count: int) -> list[tuple[str, Event]]:
    return [await next_item(subscription) for _ in range(count)]


async def take_events(subscription: Subscription, count: int) -> list[tuple[str, Event]]:
    """The next `count` items other than READY. With Redis, READY means "caught up with this
    process's log", and the reader may append a just-published event a moment later."""
    items: list[tuple[str, Event]] = []
    while len(items) < count:
        item = await next_item(subscription)
        if item[1] is not READY:
            items.append(item)
    return items


async def live(bus: EventBus, last_event_id: str | None = None) -> tuple[Subscription, str]:
    """A subscription that has caught up (its READY seen), and READY's id."""
    subscription = bus.subscribe(last_event_id)
    event_id, event = await next_item(subscription)
    assert event is READY, event
    return subscription, event_id


def types(items: list[tuple[str, Event]]) -> list[str]:
    return [event.type for _, event in items]


async def test_a_subscriber_gets_new_events_live_in_order(bus: EventBus) -> None:
    subscription, ready_id = await live(bus)
    await bus.publish([Event("ticket.created", {"ticket_id": 1}), Event("message.created")])
    await bus.publish([Event("ticket.updated", {"ticket_id": 1, "status": "replied"})])

    items = await take(subscription, 3)
    assert types(items) == ["ticket.created", "message.created", "ticket.updated"]
    assert items[0][1].data == {"ticket_id": 1}
    assert items[2][1].data_json() == '{"ticket_id":1,"status":"replied"}'
    ids = [EventId.parse(event_id) for event_id, _ in items]
    assert None not in ids
    assert sorted(ids) == ids and len(set(ids)) == 3  # type: ignore[type-var]
    assert EventId.parse(ready_id) < ids[0]  # type: ignore[operator]
    await subscription.aclose()


async def test_every_subscriber_gets_every_event(bus: EventBus) -> None:
    subscriptions = [(await live(bus))[0] for _ in range(20)]
    await bus.publish([Event("message.created", {"message_id": 7})])
    for subscription in subscriptions:
        (_, event) = await next_item(subscription)
        assert event.data == {"message_id": 7}
        await subscription.aclose()


async def test_a_reconnect_with_the_last_event_id_replays_what_was_missed(bus: EventBus) -> None:
    subscription, _ = await live(bus)
    await bus.publish([Event("one")])
    (last_id, _) = await next_item(subscription)
    await subscription.aclose()  # the browser lost its connection

    await bus.publish([Event("two"), Event("three")])
    await bus.publish([Event("four")])

    again = bus.subscribe(last_id)
    items = await take_events(again, 3)
    assert types(items) == ["two", "three", "four"]
    await bus.publish([Event("five")])
    assert types(await take_events(again, 1)) == ["five"]
    await again.aclose()


async def test_a_reconnect_with_the_ready_id_misses_nothing(bus: EventBus) -> None:
    # The first frame of a fresh stream carries an id, so even a stream that saw no event yet
    # can resume without a gap.
    subscription, ready_id = await live(bus)
    await subscription.aclose()
    await bus.publish([Event("while away")])
    again = bus.subscribe(ready_id)
    assert types(await take_events(again, 1)) == ["while away"]
    await again.aclose()


@pytest.mark.parametrize("last_event_id", ["garbage", "99999999999999-0"])
async def test_an_unknown_or_future_id_asks_for_a_resync(bus: EventBus, last_event_id: str) -> None:
    await bus.publish([Event("before")])
    subscription = bus.subscribe(last_event_id)
    items = await take(subscription, 2)
    assert types(items) == ["resync", "ready"]
    await bus.publish([Event("after")])
    assert types(await take(subscription, 1)) == ["after"]
    await subscription.aclose()


async def test_a_last_event_id_from_before_the_history_asks_for_a_resync(
    redis_or_none: Redis | None,
) -> None:
    bus = make_bus(redis_or_none, history=5)
    try:
        subscription, first_id = await live(bus)
        await subscription.aclose()
        if isinstance(bus, RedisEventBus):
            # Redis trims MAXLEN ~ in whole nodes (100 entries): trim exactly to be sure.
            for n in range(10):
                await bus.publish([Event(f"e{n}")])
            await bus.redis.xtrim(TEST_KEY, maxlen=3, approximate=False)
            await asyncio.sleep(0.2)  # until the reader has pushed the first ones out of the ring
        else:
            for n in range(10):
                await bus.publish([Event(f"e{n}")])
        again = bus.subscribe(first_id)
        items = await take(again, 1)
        assert types(items) == ["resync"]
        # After the resync it follows from the newest event on.
        assert types(await take(again, 1)) == ["ready"]
        await again.aclose()
    finally:
        await bus.close()


async def test_a_subscriber_that_falls_behind_the_ring(redis_or_none: Redis | None) -> None:
    """A connection too slow for the traffic: in-process it must resync; with Redis the gap is
    read back from the stream, which keeps more than the process's ring."""
    bus = make_bus(redis_or_none, history=5)
    try:
        subscription, _ = await live(bus)
        for n in range(30):
            await bus.publish([Event(f"e{n}")])
        await asyncio.sleep(0.2)  # the Redis reader has them all in the ring by now
        if isinstance(bus, RedisEventBus):
            items = await take(subscription, 30)
            assert types(items) == [f"e{n}" for n in range(30)]
        else:
            # The client reloads everything from the API on a resync, so the events before it
            # are not sent again; the next one is.
            assert types(await take(subscription, 1)) == ["resync"]
            await bus.publish([Event("next")])
            assert types(await take(subscription, 1)) == ["next"]
        await subscription.aclose()
    finally:
        await bus.close()


async def test_heartbeats_come_when_nothing_happens(redis_or_none: Redis | None) -> None:
    bus = make_bus(redis_or_none, heartbeat=0.05)
    try:
        subscription, ready_id = await live(bus)
        event_id, event = await next_item(subscription)
        assert event is KEEPALIVE
        assert event_id == ready_id
        await subscription.aclose()
    finally:
        await bus.close()


async def test_ending_the_streams_ends_every_subscription(bus: EventBus) -> None:
    subscriptions = [(await live(bus))[0] for _ in range(3)]
    assert getattr(bus, "subscribers", None) == 3
    waiting = [asyncio.ensure_future(anext(s)) for s in subscriptions]
    await asyncio.sleep(0.01)
    bus.end_streams()
    for waiter in waiting:
        with pytest.raises(StopAsyncIteration):
            async with asyncio.timeout(2):
                await waiter
    assert getattr(bus, "subscribers", None) == 0
    # A subscription opened afterwards ends at once.
    with pytest.raises(StopAsyncIteration):
        await next_item(bus.subscribe(None))
    # Publishing still works (the worker and the bot keep running while the web stops).
    await bus.publish([Event("late")])


async def test_redis_instances_share_the_stream(redis: Redis) -> None:
    """Two processes: what one publishes, the other's subscribers get; and a browser moving to
    the other instance resumes from its Last-Event-ID there."""
    first, second = make_bus(redis), make_bus(redis)
    try:
        on_first, _ = await live(first)
        on_second, _ = await live(second)
        await first.publish([Event("from the first")])
        await second.publish([Event("from the second")])
        assert types(await take(on_second, 2)) == ["from the first", "from the second"]
        got = await take(on_first, 2)
        assert types(got) == ["from the first", "from the second"]
        await on_first.aclose()

        await second.publish([Event("missed")])
        # A third instance started after all this: its log begins now, the replay comes from
        # the Redis stream.
        third = make_bus(redis)
        try:
            resumed = third.subscribe(got[0][0])
            assert types(await take(resumed, 3)) == ["from the second", "missed", "ready"]
            # READY carries the resume point: the last replayed id.
            assert (await take(resumed, 0)) == []
            await resumed.aclose()
        finally:
            await third.close()
        await on_second.aclose()
    finally:
        await first.close()
        await second.close()


# --- after commit, never after a rollback -------------------------------------------------------


async def test_events_are_published_after_commit_and_dropped_on_rollback(
    runtime: Runtime,
) -> None:
    async def failing_request() -> None:
        async with runtime.db.unit_of_work() as session:
            emit(session, "ticket.updated", {"ticket_id": 1, "rolled": "back"})
            raise RuntimeError("the request failed")

    subscription, _ = await live(runtime.bus)
    try:
        with pytest.raises(RuntimeError):
            await failing_request()
        async with runtime.db.unit_of_work() as session:
            emit(session, "ticket.updated", {"ticket_id": 2})
        (_, event) = await next_item(subscription)
        assert event.data == {"ticket_id": 2}
    finally:
        await subscription.aclose()
        await runtime.bus.close()


async def test_a_student_opening_a_ticket_is_seen_live(
    runtime: Runtime, session: AsyncSession
) -> None:
    student = await make_student(session)
    await session.commit()
    subscription, _ = await live(runtime.bus)
    try:
        async with runtime.db.unit_of_work() as work:
            ticket, message = await service.do_open_ticket(
                work, student, category_id=None, subject="Exam stress", body="I can't focus."
            )
        items = await take(subscription, 2)
        assert sorted(types(items)) == ["message.created", "ticket.created"]
        by_type = {event.type: event.data for _, event in items}
        assert by_type["ticket.created"]["ticket_id"] == ticket.id
        assert by_type["message.created"]["message_id"] == message.id
    finally:
        await subscription.aclose()
        await runtime.bus.close()


async def test_control_events_are_distinct_objects() -> None:
    assert len({id(READY), id(RESYNC), id(KEEPALIVE)}) == 3

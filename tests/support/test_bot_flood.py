"""The flood limiters, in-process with a fake clock and on a real Redis, rule by rule."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from counseldesk.support.bot_flood import (
    FloodRule,
    MemoryFloodLimiter,
    RedisFloodLimiter,
    Verdict,
)

RULES = (FloodRule(limit=2, seconds=1.0), FloodRule(limit=3, seconds=10.0))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_memory_limiter_counts_windows_from_their_first_message() -> None:
    clock = Clock()
    limiter = MemoryFloodLimiter(RULES, clock=clock)
    assert (await limiter.hit(1)).allowed
    assert (await limiter.hit(1)).allowed
    assert await limiter.hit(1) == Verdict(False, 1.0, notify=True)
    clock.now += 0.5
    assert await limiter.hit(1) == Verdict(False, 0.5, notify=False)  # one notice per window
    assert (await limiter.hit(2)).allowed  # students are counted apart

    clock.now += 0.6  # the burst window is over; refused messages did not count
    assert (await limiter.hit(1)).allowed
    refused = await limiter.hit(1)  # the 10 s window is full now (3 counted)
    assert not refused.allowed and refused.notify
    assert refused.retry_after == pytest.approx(8.9)


async def test_redis_limiter_applies_the_same_rules(redis: Redis) -> None:
    limiter = RedisFloodLimiter(redis, (FloodRule(limit=2, seconds=0.2), FloodRule(3, 10.0)))
    assert (await limiter.hit(7)).allowed
    assert (await limiter.hit(7)).allowed
    first, second = await limiter.hit(7), await limiter.hit(7)
    assert (first.allowed, first.notify, second.allowed, second.notify) == (
        False,
        True,
        False,
        False,
    )
    assert 0 < first.retry_after <= 0.2
    assert (await limiter.hit(8)).allowed
    # One counter per rule and the notice flag, all under the student's hash tag.
    assert sorted(await redis.keys("counseldesk:flood:{7}:*")) == [
        "counseldesk:flood:{7}:0",
        "counseldesk:flood:{7}:1",
        "counseldesk:flood:{7}:notice",
    ]

"""The failed-login counter, in-process and in Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from counseldesk.errors import TooManyRequests
from counseldesk.staff.login_limiter import (
    MAX_TRACKED_KEYS,
    REDIS_PREFIX,
    MemoryLoginLimiter,
    RedisLoginLimiter,
    limiter_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_limiter_blocks_for_the_rest_of_the_window() -> None:
    clock = Clock()
    limiter = MemoryLoginLimiter(max_failures=3, window_seconds=600, clock=clock)

    for _ in range(3):
        await limiter.check("k")
        await limiter.record_failure("k")
    clock.now += 100

    with pytest.raises(TooManyRequests) as blocked:
        await limiter.check("k")
    assert blocked.value.retry_after == 500
    assert blocked.value.message == "Too many failed attempts. Try again in 9 minutes."
    await limiter.check("other")  # other keys are unaffected

    clock.now += 500
    await limiter.check("k")  # the window ended


async def test_memory_limiter_reset_and_short_waits() -> None:
    clock = Clock()
    limiter = MemoryLoginLimiter(max_failures=1, window_seconds=30, clock=clock)
    await limiter.record_failure("k")
    with pytest.raises(TooManyRequests, match="Try again in 30 s"):
        await limiter.check("k")
    await limiter.reset("k")
    await limiter.check("k")


async def test_memory_limiter_stays_bounded() -> None:
    clock = Clock()
    limiter = MemoryLoginLimiter(max_failures=1, window_seconds=60, clock=clock)
    for n in range(MAX_TRACKED_KEYS + 50):
        await limiter.record_failure(f"k{n}")
    assert len(limiter._failures) <= MAX_TRACKED_KEYS


async def test_redis_limiter(redis: Redis) -> None:
    limiter = RedisLoginLimiter(redis, max_failures=2, window_seconds=600)
    key = limiter_key("login", "a@example.org", "10.0.0.1")

    await limiter.record_failure(key)
    await limiter.check(key)
    await limiter.record_failure(key)
    with pytest.raises(TooManyRequests) as blocked:
        await limiter.check(key)
    assert 590 <= blocked.value.retry_after <= 600
    # Failures during the pause do not extend it.
    await redis.expire(REDIS_PREFIX + key, 5)
    await limiter.record_failure(key)
    assert await redis.ttl(REDIS_PREFIX + key) <= 5

    await limiter.reset(key)
    await limiter.check(key)
    assert await redis.exists(REDIS_PREFIX + key) == 0


def test_limiter_key_does_not_contain_the_email() -> None:
    key = limiter_key("login", "secret.person@example.org", "1.2.3.4")
    assert "secret" not in key
    assert len(key) == 32

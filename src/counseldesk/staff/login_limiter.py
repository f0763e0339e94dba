"""Counting failed logins, so passwords cannot be guessed at speed.

Failures are counted per (email, client address) over a fixed window that starts at the first
failure. Keying on both means an attacker cannot lock a counselor out from elsewhere by failing
on purpose, and one office NAT address does not lock out everyone behind it. With Redis the count
is shared by every app instance; without it each process counts its own (single-instance setups).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from counseldesk.errors import TooManyRequests

REDIS_PREFIX = "counseldesk:login_failures:"
# The in-process table forgets expired entries once it grows past this, so a flood of made-up
# emails cannot grow it without bound.
MAX_TRACKED_KEYS = 10_000


class LoginLimiter(Protocol):
    async def check(self, key: str) -> None:
        """Raise TooManyRequests when `key` has used up its failures in the current window."""

    async def record_failure(self, key: str) -> None: ...

    async def reset(self, key: str) -> None:
        """Forget the failures of `key` (after a successful login)."""


def limiter_key(*parts: object) -> str:
    """A fixed-length key for any tuple, e.g. ("login", email, address); it stores no email."""
    raw = "\x1f".join(str(part) for part in parts)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _too_many(retry_after: float) -> TooManyRequests:
    seconds = max(1, math.ceil(retry_after))
    minutes = math.ceil(seconds / 60)
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}" if seconds > 60 else f"{seconds} s"
    return TooManyRequests(f"Too many failed attempts. Try again in {wait}.", retry_after=seconds)


class MemoryLoginLimiter:
    def __init__(
        self,
        max_failures: int,
        window_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        # key -> (failures, when the window ends)
        self._failures: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> tuple[int, float] | None:
        entry = self._failures.get(key)
        if entry is not None and entry[1] <= self._clock():
            del self._failures[key]
            return None
        return entry

    async def check(self, key: str) -> None:
        entry = self._live(key)
        if entry is not None and entry[0] >= self.max_failures:
            raise _too_many(entry[1] - self._clock())

    async def record_failure(self, key: str) -> None:
        entry = self._live(key)
        if entry is None:
            self._forget_expired_if_large()
            entry = (0, self._clock() + self.window_seconds)
        self._failures[key] = (entry[0] + 1, entry[1])

    async def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def _forget_expired_if_large(self) -> None:
        if len(self._failures) < MAX_TRACKED_KEYS:
            return
        now = self._clock()
        self._failures = {k: v for k, v in self._failures.items() if v[1] > now}
        while len(self._failures) >= MAX_TRACKED_KEYS:  # all live: drop the oldest windows
            del self._failures[next(iter(self._failures))]


class RedisLoginLimiter:
    def __init__(self, redis: Redis, max_failures: int, window_seconds: int) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    async def check(self, key: str) -> None:
        name = REDIS_PREFIX + key
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            count, ttl_ms = await pipe.execute()
        if count is not None and int(count) >= self.max_failures and ttl_ms > 0:
            raise _too_many(ttl_ms / 1000)

    async def record_failure(self, key: str) -> None:
        name = REDIS_PREFIX + key
        # INCR and EXPIRE NX in one transaction: the window starts at the first failure and
        # later failures do not extend it.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, self.window_seconds, nx=True)
            await pipe.execute()

    async def reset(self, key: str) -> None:
        await self.redis.delete(REDIS_PREFIX + key)


def build_login_limiter(
    redis: Redis | None, max_failures: int, window_seconds: int
) -> LoginLimiter:
    if redis is not None:
        return RedisLoginLimiter(redis, max_failures, window_seconds)
    return MemoryLoginLimiter(max_failures, window_seconds)

"""The global send rate towards Telegram: evenly spaced slots, and a pause after a 429.

Telegram's flood control counts every message a bot sends, whichever process sends it, so the
limit belongs to the bot, not to a worker. With Redis the slots are handed out by one Lua script
(GCRA: a "theoretical arrival time" that each send pushes one interval further), so any number
of workers together stay under the rate; without Redis a single process keeps the same state in
memory.

Slots are spaced evenly rather than granted in bursts: Telegram measures in short windows, and 25
sends in the first 100 ms of a second is what gets a bot a 429 even under "30 per second".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis


class SendRateLimiter(Protocol):
    async def acquire(self) -> None:
        """Wait for the next send slot (and out any pause)."""

    async def pause(self, seconds: float) -> None:
        """Stop all sending for `seconds` (Telegram's 429 `retry_after`); never shortens one."""

    async def paused_for(self) -> float:
        """Seconds left of the current pause; 0 when sending is allowed."""


class LocalRateLimiter:
    """One process's limiter: correct when this process is the bot's only sender."""

    def __init__(self, rate_per_second: float, clock: Callable[[], float] = time.monotonic):
        if rate_per_second <= 0:
            raise ValueError("the rate must be positive")
        self._interval = 1.0 / rate_per_second
        self._clock = clock
        self._next_slot = 0.0
        self._paused_until = 0.0

    async def acquire(self) -> None:
        while True:
            now = self._clock()
            if self._paused_until > now:
                await asyncio.sleep(self._paused_until - now)
                continue
            # Reserve before sleeping: concurrent callers line up one interval apart.
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            if slot > now:
                await asyncio.sleep(slot - now)
            return

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())


# KEYS[1]: the theoretical arrival time in µs of Redis's clock; KEYS[2]: the pause flag (its TTL
# is the pause). ARGV[1]: µs between sends. Returns {1, µs to wait for the reserved slot} or
# {0, µs of pause left} (nothing reserved). Redis's own clock, so workers' clocks need not agree.
_ACQUIRE = """
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {0, pause * 1000} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ttl = math.floor((tat + interval - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', ttl)
return {1, tat - now}
"""

# KEYS[1]: the pause flag. ARGV[1]: the pause in ms. A shorter pause never cuts a longer one.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if left < wanted then redis.call('SET', KEYS[1], '1', 'PX', wanted) end
return 0
"""


class RedisRateLimiter:
    """The limiter shared by every worker that uses the same Redis and `key`."""

    def __init__(self, redis: Redis, rate_per_second: float, *, key: str):
        if rate_per_second <= 0:
            raise ValueError("the rate must be positive")
        self._redis = redis
        self._interval_us = max(1, round(1_000_000 / rate_per_second))
        self._slot_key = f"{key}:tat"
        self._pause_key = f"{key}:pause"
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)

    async def acquire(self) -> None:
        while True:
            reserved, wait_us = await self._acquire(
                keys=[self._slot_key, self._pause_key], args=[self._interval_us]
            )
            if int(wait_us) > 0:
                await asyncio.sleep(int(wait_us) / 1_000_000)
            if int(reserved):
                return

    async def pause(self, seconds: float) -> None:
        await self._pause(keys=[self._pause_key], args=[max(1, round(seconds * 1000))])

    async def paused_for(self) -> float:
        left = int(await self._redis.pttl(self._pause_key))
        return left / 1000 if left > 0 else 0.0


def create_rate_limiter(
    rate_per_second: float, redis: Redis | None, *, key: str
) -> SendRateLimiter:
    """Shared through Redis when there is one, in-process otherwise."""
    if redis is not None:
        return RedisRateLimiter(redis, rate_per_second, key=key)
    return LocalRateLimiter(rate_per_second)

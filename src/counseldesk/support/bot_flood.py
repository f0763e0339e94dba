"""Flood control on what students send the bot: a per-student limit on messages.

A refused message is not handled at all (not stored, not answered by any feature), but it is
never dropped silently: the first refusal of each throttling window tells the student that their
last message was not delivered and how many seconds to wait before sending it again. Later
refusals in the same window stay quiet, so the notice cannot itself become the flood.

Commands (/start, /menu, /cancel...) are never refused: a student must always be able to get
back to the menu, and each costs one reply, which the outbox's global send rate already bounds.

With Redis the counts are shared by every bot instance (one atomic script per message); without
it each process counts its own, which is right for the single-instance setup that runs without
Redis.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject
from redis.asyncio import Redis
from redis.exceptions import RedisError

from counseldesk.i18n import t
from counseldesk.telegram.replies import Replies

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FloodRule:
    """At most `limit` messages in a window of `seconds` that starts at the first of them."""

    limit: int
    seconds: float


# A person in distress often sends several short messages in a row ("hi", "are you there",
# "I need help"), and an album of photos (a form, a letter: up to 10) arrives as one message per
# photo at once: ten within ten seconds still pass; a paste-bomb or a script does not.
BURST = FloodRule(limit=10, seconds=10.0)
# Twenty a minute is above the pace of any typed conversation, and caps what one account can
# pour into a ticket (and into counselors' live inboxes) at twenty rows a minute.
SUSTAINED = FloodRule(limit=20, seconds=60.0)
DEFAULT_RULES = (BURST, SUSTAINED)

# The in-process table forgets finished windows once it grows past this many students.
MAX_TRACKED_USERS = 10_000
REDIS_PREFIX = "counseldesk:flood:"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0
    notify: bool = False  # the first refusal of this throttling window


class FloodLimiter(Protocol):
    async def hit(self, user_id: int) -> Verdict:
        """Count one message of `user_id`, or refuse it (a refused one does not count)."""


class MemoryFloodLimiter:
    def __init__(
        self, rules: Sequence[FloodRule], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rules = tuple(rules)
        self._clock = clock
        # user id -> per rule (messages counted, when its window ends); when the notice expires
        self._windows: dict[int, list[tuple[int, float]]] = {}
        self._noticed_until: dict[int, float] = {}

    async def hit(self, user_id: int) -> Verdict:
        now = self._clock()
        current = self._windows.get(user_id) or [(0, 0.0)] * len(self.rules)
        windows = [
            (count, ends) if ends > now else (0, now + rule.seconds)
            for (count, ends), rule in zip(current, self.rules, strict=True)
        ]
        full = [
            ends
            for (count, ends), rule in zip(windows, self.rules, strict=True)
            if count >= rule.limit
        ]
        if full:
            blocked_until = max(full)
            self._windows[user_id] = windows
            notify = self._noticed_until.get(user_id, 0.0) <= now
            if notify:
                self._noticed_until[user_id] = blocked_until
            return Verdict(False, blocked_until - now, notify)
        if user_id not in self._windows:
            self._forget_finished_if_large(now)
        self._windows[user_id] = [(count + 1, ends) for count, ends in windows]
        return Verdict(True)

    def _forget_finished_if_large(self, now: float) -> None:
        if len(self._windows) < MAX_TRACKED_USERS:
            return
        self._windows = {
            user: windows
            for user, windows in self._windows.items()
            if any(ends > now for _, ends in windows)
        }
        self._noticed_until = {u: e for u, e in self._noticed_until.items() if e > now}
        while len(self._windows) >= MAX_TRACKED_USERS:  # all live: drop the oldest
            del self._windows[next(iter(self._windows))]


# KEYS: one counter per rule, then the notice flag. ARGV: limit and window (ms) of each rule.
# Atomic, so two bot instances handling one student's messages at once count both.
_HIT_SCRIPT = """
local rules = #KEYS - 1
local wait = 0
for i = 1, rules do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
      ttl = tonumber(ARGV[2 * i])
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then
  local first = redis.call('SET', KEYS[rules + 1], '1', 'PX', wait, 'NX')
  return {0, wait, first and 1 or 0}
end
for i = 1, rules do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  end
end
return {1, 0, 0}
"""


class RedisFloodLimiter:
    def __init__(self, redis: Redis, rules: Sequence[FloodRule]) -> None:
        self.rules = tuple(rules)
        self._script = redis.register_script(_HIT_SCRIPT)
        self._args = [
            value for rule in self.rules for value in (rule.limit, max(1, int(rule.seconds * 1000)))
        ]

    async def hit(self, user_id: int) -> Verdict:
        # One hash tag per student: all of their keys land on one Redis Cluster slot.
        base = f"{REDIS_PREFIX}{{{user_id}}}:"
        keys = [f"{base}{i}" for i in range(len(self.rules))] + [f"{base}notice"]
        allowed, wait_ms, notify = await self._script(keys=keys, args=self._args)
        return Verdict(bool(int(allowed)), int(wait_ms) / 1000, bool(int(notify)))


def build_flood_limiter(
    redis: Redis | None, rules: Sequence[FloodRule] = DEFAULT_RULES
) -> FloodLimiter:
    if redis is not None:
        return RedisFloodLimiter(redis, rules)
    return MemoryFloodLimiter(rules)


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class FloodControlMiddleware(BaseMiddleware):
    """Outer middleware on messages, inside the unit of work (it queues its notice there)."""

    def __init__(self, limiter: FloodLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Message)
        user = event.from_user
        if user is None or user.is_bot or (event.text or "").startswith("/"):
            return await handler(event, data)
        try:
            verdict = await self.limiter.hit(user.id)
        except RedisError:
            # Never let flood control take the bot down with Redis: let the message through.
            log.warning("flood check for user %s failed; message let through", user.id)
            return await handler(event, data)
        if verdict.allowed:
            return await handler(event, data)
        if verdict.notify:
            replies: Replies = data["replies"]
            seconds = max(1, math.ceil(verdict.retry_after))
            replies.send(t("flood.notice", data.get("lang"), seconds=seconds))
        log.info("message %s of user %s refused by flood control", event.message_id, user.id)
        return None

"""Fault injection and flood control: the failures the outbox worker must survive, on demand."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from counseldesk.telegram.emulator.errors import BotApiError, too_many_requests

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: injected fault",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Fault:
    """Make the next `remaining` calls of `method` ("*": any method), optionally only those for
    one chat_id, wait `delay` seconds and then fail with `error_code` (or, without an error_code,
    succeed late: a slow Telegram)."""

    fault_id: int
    method: str
    remaining: int
    error_code: int | None
    description: str | None
    retry_after: int | None
    chat_id: int | None
    delay: float

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> BotApiError | None:
        if self.error_code is None:
            return None
        if self.error_code == 429:
            retry_after = self.retry_after if self.retry_after is not None else 1
            error = too_many_requests(retry_after)
            if self.description:
                error.description = self.description
            return error
        description = self.description or _DEFAULT_DESCRIPTIONS.get(
            self.error_code, "Injected error"
        )
        return BotApiError(self.error_code, description, retry_after=self.retry_after)

    def to_sim(self) -> dict[str, Any]:
        return {
            "id": self.fault_id,
            "method": self.method,
            "remaining": self.remaining,
            "error_code": self.error_code,
            "description": self.description,
            "retry_after": self.retry_after,
            "chat_id": self.chat_id,
            "delay": self.delay,
        }


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(
        self,
        method: str,
        *,
        count: int = 1,
        error_code: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | None = None,
        delay: float = 0.0,
    ) -> Fault:
        fault = Fault(
            fault_id=self._next_id,
            method=method,
            remaining=count,
            error_code=error_code,
            description=description,
            retry_after=retry_after,
            chat_id=chat_id,
            delay=delay,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        """The first armed fault for this call, used up by one."""
        for fault in self._faults:
            if fault.matches(method, chat_id):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def list(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        return count


class RateLimiter:
    """Sliding one-second windows, global and per chat, like Telegram's flood control for sends.

    Refused calls do not count against the window (Telegram does not deliver them either)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._global: deque[float] = deque()
        self._per_chat: dict[int, deque[float]] = {}

    @staticmethod
    def _retry_after(window: deque[float], now: float) -> int:
        return max(1, math.ceil(window[0] + 1.0 - now))

    @staticmethod
    def _prune(window: deque[float], now: float) -> None:
        while window and window[0] <= now - 1.0:
            window.popleft()

    def check(self, global_limit: int | None, chat_limit: int | None, chat_id: int | None) -> None:
        """Count one send, or raise 429 with the seconds until the window has room."""
        if global_limit is None and (chat_limit is None or chat_id is None):
            return
        now = self._clock()
        self._prune(self._global, now)
        if global_limit is not None and len(self._global) >= global_limit:
            raise too_many_requests(self._retry_after(self._global, now))
        chat_window: deque[float] | None = None
        if chat_limit is not None and chat_id is not None:
            chat_window = self._per_chat.setdefault(chat_id, deque())
            self._prune(chat_window, now)
            if len(chat_window) >= chat_limit:
                raise too_many_requests(self._retry_after(chat_window, now))
            chat_window.append(now)
        self._global.append(now)
        if len(self._per_chat) > 10_000:
            # Forget chats whose window emptied, so the map does not grow with every student.
            for key, window in list(self._per_chat.items()):
                self._prune(window, now)
                if not window:
                    del self._per_chat[key]

    def clear(self) -> None:
        self._global.clear()
        self._per_chat.clear()

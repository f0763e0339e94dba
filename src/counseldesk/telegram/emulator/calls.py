"""The log of Bot API calls: what the bot asked and exactly what it was answered."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any


class CallLog:
    """The last `max_calls` calls, each {"seq", "time", "method", "params", "status"} plus the
    answer's own fields ("ok" and "result", or "error_code", "description", "parameters")."""

    def __init__(self, max_calls: int, clock: Callable[[], float] = time.time):
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_calls)
        self._clock = clock
        self._seq = 0  # never restarts, so `after=<seq>` readers stay correct across clear()

    @property
    def last_seq(self) -> int:
        return self._seq

    def add(self, method: str, params: dict[str, Any], status: int, body: dict[str, Any]) -> None:
        self._seq += 1
        self.entries.append(
            {
                "seq": self._seq,
                "time": self._clock(),
                "method": method,
                "params": params,
                "status": status,
                **body,
            }
        )

    def after(self, seq: int = 0, method: str | None = None) -> list[dict[str, Any]]:
        wanted = method.lower() if method else None
        return [
            call
            for call in self.entries
            if call["seq"] > seq and (wanted is None or call["method"].lower() == wanted)
        ]

    def clear(self) -> int:
        count = len(self.entries)
        self.entries.clear()
        return count

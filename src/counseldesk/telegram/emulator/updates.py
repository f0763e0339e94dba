"""The bot's update queue: what getUpdates returns or the webhook receives, plus the webhook's
settings. Updates stay queued until confirmed (a getUpdates offset past them, or delivery)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from counseldesk.telegram.emulator.errors import BotApiError
from counseldesk.telegram.emulator.records import Signal

CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


class UpdateQueue:
    def __init__(self, *, max_pending: int, first_update_id: int):
        self.max_pending = max_pending
        self.pending: deque[dict[str, Any]] = deque()
        self.changed = Signal()
        self.webhook: Webhook | None = None
        self.polling_allowed_updates: list[str] | None = None
        self.closing = False
        self._update_id = first_update_id
        self._poll_generation = 0

    def _allowed(self) -> list[str] | None:
        if self.webhook is not None:
            return self.webhook.allowed_updates
        return self.polling_allowed_updates

    def push(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update; None when allowed_updates excludes its type (Telegram does not even
        create those). Beyond max_pending the oldest is dropped."""
        allowed = self._allowed()
        if allowed and kind not in allowed:
            return None
        self._update_id += 1
        self.pending.append({"update_id": self._update_id, kind: payload})
        while len(self.pending) > self.max_pending:
            self.pending.popleft()
        self.changed.fire()
        return self._update_id

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:  # "the last -offset updates"; everything before is forgotten
            while len(self.pending) > -offset:
                self.pending.popleft()
            return
        while self.pending and self.pending[0]["update_id"] < offset:
            self.pending.popleft()

    async def get_updates(
        self,
        *,
        offset: int | None,
        limit: int,
        wait: float,
        allowed_updates: list[str] | None,
    ) -> list[dict[str, Any]]:
        """getUpdates: confirm everything below offset, then return up to `limit` updates,
        waiting up to `wait` seconds (the call's timeout) for the first. A newer getUpdates ends
        this one with 409, as on Telegram (two bot instances polling at once is a bug to see)."""
        if self.webhook is not None:
            raise BotApiError(409, CONFLICT_WEBHOOK)
        if allowed_updates is not None:
            self.polling_allowed_updates = allowed_updates
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self.changed.fire()  # wakes (and so terminates) an older long poll
        deadline = time.monotonic() + wait
        while True:
            if generation != self._poll_generation:
                raise BotApiError(409, CONFLICT_OTHER_POLL)
            if self.webhook is not None:
                raise BotApiError(409, CONFLICT_WEBHOOK)
            if self.pending or self.closing:
                return list(self.pending)[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await self.changed.wait(remaining)

    def delivered(self, update_id: int) -> None:
        """The webhook took (or finally refused) this update: it leaves the queue."""
        if self.pending and self.pending[0]["update_id"] == update_id:
            self.pending.popleft()

    def set_webhook(
        self,
        url: str,
        *,
        secret_token: str | None,
        max_connections: int,
        allowed_updates: list[str] | None,
        drop_pending_updates: bool,
    ) -> str:
        if drop_pending_updates:
            self.pending.clear()
        current = self.webhook
        if (
            current is not None
            and current.url == url
            and current.secret_token == secret_token
            and current.allowed_updates == allowed_updates
        ):
            return "Webhook is already set"
        self.webhook = Webhook(
            url=url,
            secret_token=secret_token,
            max_connections=max_connections,
            allowed_updates=allowed_updates,
        )
        self.changed.fire()
        return "Webhook was set"

    def delete_webhook(self, *, drop_pending_updates: bool) -> str:
        if drop_pending_updates:
            self.pending.clear()
        if self.webhook is None:
            return "Webhook is already deleted"
        self.webhook = None
        self.changed.fire()
        return "Webhook was deleted"

    def webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    def clear(self) -> None:
        """Back to a fresh bot (no webhook, nothing pending); update ids keep increasing."""
        self.pending.clear()
        self.webhook = None
        self.polling_allowed_updates = None
        self.changed.fire()

"""What a Bot API method handler gets to work with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from counseldesk.telegram.emulator.errors import bad_request
from counseldesk.telegram.emulator.params import Params
from counseldesk.telegram.emulator.state import EmulatorState


def _no_op() -> None:
    return None


@dataclass
class CallContext:
    state: EmulatorState
    params: Params
    token: str
    # Called after setWebhook so that delivery starts (the Bot API layer knows no HTTP client).
    on_webhook_set: Callable[[], None] = _no_op
    # Telegram adds a human description to some successful answers ("Webhook was set").
    description: str | None = None

    def chat_id(self) -> int:
        if not self.params.has("chat_id"):
            raise bad_request("chat_id is empty")
        # "@username" chat ids name channels and groups, which the emulator does not have.
        chat_id = self.params.get_int("chat_id", error="chat not found")
        assert chat_id is not None
        return chat_id

    def message_id(self) -> int:
        message_id = self.params.get_int("message_id", error="message identifier is not specified")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        return message_id


Handler = Callable[[CallContext], Awaitable[Any]]

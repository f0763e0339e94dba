"""Uvicorn servers that share one event loop with the bot and the worker."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that hosts it.

    `before_shutdown` runs when the server starts stopping (should_exit). Uvicorn waits for every
    open response to finish before it exits, and a live event stream never finishes by itself:
    the hook ends those streams (the realtime bus's `end_streams`), so stopping never hangs.
    """

    def __init__(
        self, config: uvicorn.Config, *, before_shutdown: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.before_shutdown is not None:
            self.before_shutdown()
        await super().shutdown(sockets)

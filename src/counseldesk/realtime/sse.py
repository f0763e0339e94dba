"""Server-Sent Events: a bus subscription written as a `text/event-stream` response.

Frames: `id:` (the resume point the browser sends back as Last-Event-ID), `event:` (the event
type) and one `data:` line of JSON. Control events become `event: ready` / `event: resync` frames
and heartbeats a `: keepalive` comment, which proxies and the browser see as traffic.

The response ends when the client goes away, when the bus ends its streams (the server is
stopping: uvicorn waits for open responses before it exits, so they must end first), or after
`max_lifetime` seconds: the browser reconnects at once with Last-Event-ID and nothing is lost,
but its login is checked again, so a deactivated account stops receiving within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from counseldesk.realtime.bus import KEEPALIVE, EventBus
from counseldesk.realtime.events import Event

# How long the browser waits before reconnecting after the stream ends or breaks.
log = logging.getLogger(__name__)

RETRY_MS = 2_000
DEFAULT_MAX_LIFETIME = 20 * 60.0


def frame(event_id: str, event: Event) -> bytes:
    # json.dumps never writes a raw newline, so the data is always one line; the type and id
    # are made by us, never from user input.
    return f"id: {event_id}\nevent: {event.type}\ndata: {event.data_json()}\n\n".encode()


async def event_frames(
    bus: EventBus, last_event_id: str | None, *, max_lifetime: float = DEFAULT_MAX_LIFETIME
) -> AsyncGenerator[bytes, None]:
    loop = asyncio.get_running_loop()
    # Spread over +-10 %, so connections opened together (after a deploy) do not all come back
    # in the same second.
    deadline = loop.time() + max_lifetime * random.uniform(0.9, 1.1)  # noqa: S311
    yield f"retry: {RETRY_MS}\n\n".encode()
    subscription = bus.subscribe(last_event_id)
    try:
        async for event_id, event in subscription:
            if event is KEEPALIVE:
                if loop.time() >= deadline:
                    return
                yield b": keepalive\n\n"
            else:
                yield frame(event_id, event)
    finally:
        await subscription.aclose()


class EventStreamResponse(StreamingResponse):
    """A streaming response that also watches for the client leaving.

    A plain StreamingResponse notices a closed connection only when a write fails (up to a
    heartbeat later); here a second task waits for `http.disconnect`, so a closed tab frees its
    subscription at once.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncGenerator[bytes, None]) -> None:
        super().__init__(
            frames,
            headers={
                "Cache-Control": "no-cache, no-store",
                # nginx (deploy/) would otherwise buffer the stream.
                "X-Accel-Buffering": "no",
            },
        )
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def pump() -> None:
            async for chunk in self.frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        writer = asyncio.ensure_future(pump())
        watcher = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            writer.cancel()
            watcher.cancel()
            await asyncio.gather(writer, watcher, return_exceptions=True)
            await self.frames.aclose()
        if watcher.done() and not watcher.cancelled():
            return  # the client left: nothing more to send
        if not writer.cancelled() and (error := writer.exception()) is not None:
            if isinstance(error, OSError):
                return  # the connection broke under a write
            log.error("event stream failed", exc_info=error)
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

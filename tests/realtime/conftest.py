"""Real web servers for the event stream tests.

httpx's ASGITransport hands over a response only once it is complete, and an event stream never
completes, so these tests run the app the way production does: `System` with the web part, a
uvicorn server on a free port, its own database (not the rolled-back test transaction: the
server serves concurrent requests from its own pool) and, for the Redis variant, a real Redis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from counseldesk.db import migrate
from counseldesk.runtime import Runtime
from counseldesk.serve import Parts, System
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.support import service
from counseldesk.support.models import SupportTicket
from tests.conftest import make_settings, recreate_database
from tests.factories import DEFAULT_PASSWORD, make_counselor, make_student


@pytest.fixture(scope="session")
async def stream_database_url(server_url: str) -> str:
    url = await recreate_database(server_url, "counseldesk_sse")
    migrate.upgrade(url)
    return url


@asynccontextmanager
async def running_instance(database_url: str, redis_url: str | None) -> AsyncIterator[System]:
    """One app instance: its own runtime (pool, bus) and web server on a free port."""
    settings = make_settings(database_url=database_url, redis_url=redis_url).model_copy(
        update={"port": 0, "log_level": "WARNING"}
    )
    runtime = Runtime.open(settings, database_url)
    system = System(runtime, Parts(web=True))
    await system.start()
    try:
        yield system
    finally:
        await system.stop()
        await runtime.close()


@dataclass
class Scene:
    """A counselor who can log in, and a student with an open ticket, in the stream database."""

    counselor: Counselor
    student: Student
    ticket: SupportTicket


async def make_scene(runtime: Runtime) -> Scene:
    async with runtime.db.unit_of_work() as session:
        counselor = await make_counselor(session)
        student = await make_student(session)
        ticket, _ = await service.do_open_ticket(
            session, student, category_id=None, subject="Exam stress", body="I can't focus."
        )
    return Scene(counselor, student, ticket)


async def add_note(runtime: Runtime, scene: Scene, body: str) -> int:
    """A counselor's note, written through `runtime` (so its bus publishes the events)."""
    async with runtime.db.unit_of_work() as session:
        ticket = await service.get_ticket(session, scene.ticket.id, for_update=True)
        counselor = await session.get(Counselor, scene.counselor.id)
        assert counselor is not None
        message = await service.do_add_note(session, counselor, ticket, body=body)
    return message.id


@asynccontextmanager
async def logged_in_client(
    system: System, counselor: Counselor
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=system.web_url, timeout=httpx.Timeout(10.0, read=30.0)
    ) as client:
        response = await client.post(
            "/api/auth/login", json={"email": counselor.email, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> dict[str, object]:
        assert self.data is not None
        decoded: dict[str, object] = json.loads(self.data)
        return decoded


class EventStreamReader:
    """Splits a `text/event-stream` body into frames, as EventSource does."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next_frame(self, within: float = 5.0) -> Frame:
        frame = Frame()
        async with asyncio.timeout(within):
            async for line in self._lines:
                if line == "":
                    if frame != Frame():
                        return frame
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    frame.comments.append(value)
                elif name == "id":
                    frame.id = value
                elif name == "event":
                    frame.event = value
                elif name == "data":
                    frame.data = value if frame.data is None else frame.data + "\n" + value
                elif name == "retry":
                    frame.retry = int(value)
        raise EOFError("the stream ended")

    async def next_event(
        self, accept: Callable[[Frame], bool] = lambda frame: True, within: float = 5.0
    ) -> Frame:
        """The next frame with an event type (skipping heartbeats) that `accept` takes."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.next_frame(within)
                if frame.event is not None and accept(frame):
                    return frame


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, *, last_event_id: str | None = None, query: str = ""
) -> AsyncIterator[EventStreamReader]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with client.stream("GET", "/api/dashboard/events" + query, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        yield EventStreamReader(response)

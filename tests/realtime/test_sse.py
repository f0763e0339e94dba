"""The dashboard's event stream over real HTTP: live delivery, replay after a reconnect, login,
no pooled connection held, clean ends (client gone, server stopping), and two app instances
sharing one Redis and one PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from counseldesk.serve import System
from tests.realtime.conftest import (
    Frame,
    add_note,
    logged_in_client,
    make_scene,
    open_stream,
    running_instance,
)


@pytest.fixture
async def instance(stream_database_url: str, redis_or_none: Redis | None) -> AsyncIterator[System]:
    """One instance; once without Redis (in-process bus), once with it."""
    redis_url = os.environ["TEST_REDIS_URL"] if redis_or_none is not None else None
    async with running_instance(stream_database_url, redis_url) as system:
        yield system


def note_created(message_id: int) -> object:
    def accept(frame: Frame) -> bool:
        return frame.event == "message.created" and frame.json().get("message_id") == message_id

    return accept


async def test_a_counselor_gets_events_live(instance: System) -> None:
    scene = await make_scene(instance.runtime)
    async with (
        logged_in_client(instance, scene.counselor) as client,
        open_stream(client) as stream,
    ):
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in stream.response.headers["cache-control"]
        assert (await stream.next_frame()).retry == 2000
        ready = await stream.next_frame()
        assert ready.event == "ready" and ready.id

        message_id = await add_note(instance.runtime, scene, "Called the student's tutor.")
        frame = await stream.next_event(lambda f: f.event == "message.created")
        assert frame.id and frame.id > ready.id
        assert frame.json() == {
            "ticket_id": scene.ticket.id,
            "message_id": message_id,
            "sender_type": "counselor",
            "is_internal": True,  # counselors see notes live; students never get them
            "delivery": None,
        }


@pytest.mark.parametrize("how", ["header", "query"])
async def test_a_reconnect_replays_what_was_missed(instance: System, how: str) -> None:
    scene = await make_scene(instance.runtime)
    async with logged_in_client(instance, scene.counselor) as client:
        async with open_stream(client) as stream:
            first = await add_note(instance.runtime, scene, "one")
            seen = await stream.next_event(note_created(first))  # type: ignore[arg-type]
        assert seen.id is not None

        missed = [await add_note(instance.runtime, scene, text) for text in ("two", "three")]

        if how == "header":
            reconnect = open_stream(client, last_event_id=seen.id)
        else:
            reconnect = open_stream(client, query=f"?last_event_id={seen.id}")
        async with reconnect as stream:
            replayed = []
            while True:
                frame = await stream.next_event()
                if frame.event == "ready":
                    break
                replayed.append(frame.json().get("message_id"))
            assert [m for m in replayed if m is not None] == missed
            # ...and then live again.
            later = await add_note(instance.runtime, scene, "four")
            await stream.next_event(note_created(later))  # type: ignore[arg-type]


@pytest.mark.parametrize("last_event_id", ["not-an-id", "99999999999999-0"])
async def test_an_unknown_last_event_id_asks_the_page_to_reload(
    instance: System, last_event_id: str
) -> None:
    scene = await make_scene(instance.runtime)
    async with (
        logged_in_client(instance, scene.counselor) as client,
        open_stream(client, last_event_id=last_event_id) as stream,
    ):
        frame = await stream.next_event()
        assert frame.event == "resync" and frame.id


async def test_the_stream_needs_a_login(instance: System) -> None:
    async with httpx.AsyncClient(base_url=instance.web_url) as client:
        response = await client.get("/api/dashboard/events")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not logged in."}


async def test_an_open_stream_holds_no_database_connection(instance: System) -> None:
    scene = await make_scene(instance.runtime)
    pool = instance.runtime.db.engine.pool
    async with (
        logged_in_client(instance, scene.counselor) as client,
        open_stream(client) as first,
        open_stream(client) as second,
    ):
        await first.next_event()
        await second.next_event()
        assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_closed_connection_ends_its_subscription(instance: System) -> None:
    scene = await make_scene(instance.runtime)
    bus = instance.runtime.bus
    async with logged_in_client(instance, scene.counselor) as client:
        async with open_stream(client) as stream:
            await stream.next_event()
            assert getattr(bus, "subscribers", None) == 1
        # The tab was closed: the server notices without waiting for a heartbeat write.
        for _ in range(150):
            if getattr(bus, "subscribers", None) == 0:
                break
            await asyncio.sleep(0.02)
        assert getattr(bus, "subscribers", None) == 0


async def test_stopping_the_server_ends_open_streams(stream_database_url: str) -> None:
    """uvicorn waits for open responses before it exits; the streams must not keep it up."""
    async with running_instance(stream_database_url, None) as system:
        scene = await make_scene(system.runtime)
        async with (
            logged_in_client(system, scene.counselor) as client,
            open_stream(client) as stream,
        ):
            await stream.next_event()
            async with asyncio.timeout(5):
                await system.stop()
            with pytest.raises(EOFError):
                await stream.next_frame()


async def test_two_instances_deliver_each_others_events(
    stream_database_url: str, redis: Redis
) -> None:
    """A counselor on instance B sees what happens on instance A (one Redis, one PostgreSQL),
    and a browser that moves to A resumes there with the id it got from B."""
    redis_url = os.environ["TEST_REDIS_URL"]
    async with (
        running_instance(stream_database_url, redis_url) as a,
        running_instance(stream_database_url, redis_url) as b,
    ):
        assert a.web_url != b.web_url
        scene = await make_scene(a.runtime)
        async with (
            logged_in_client(a, scene.counselor) as on_a,
            logged_in_client(b, scene.counselor) as on_b,
        ):
            async with open_stream(on_b) as stream_b:
                await stream_b.next_event()  # ready
                # Through A's HTTP API when the support API is mounted, else A's runtime.
                response = await on_a.post(
                    f"/api/dashboard/support/tickets/{scene.ticket.id}/notes",
                    json={"body": "Written on instance A"},
                )
                if response.status_code == 404:
                    note = await add_note(a.runtime, scene, "Written on instance A")
                else:
                    assert response.status_code == 201, response.text
                    note = response.json()["id"]
                seen_on_b = await stream_b.next_event(note_created(note))  # type: ignore[arg-type]
            assert seen_on_b.id is not None

            missed = await add_note(b.runtime, scene, "Written on B while the browser moved")
            async with open_stream(on_a, last_event_id=seen_on_b.id) as stream_a:
                await stream_a.next_event(note_created(missed))  # type: ignore[arg-type]

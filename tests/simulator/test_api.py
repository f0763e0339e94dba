"""The student simulator's page and JSON API, against a real Telegram emulator."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.types import Message

from counseldesk.runtime import Runtime
from counseldesk.simulator import api as simulator_api
from counseldesk.telegram.emulator import EmulatorServer
from tests.factories import make_student

PNG = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + b"\0\0\0\x02\0\0\0\x03" + b"\0" * 16


async def _new_student(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/simulator/api/users", json={"first_name": "Achieng", **body})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def _feed(client: httpx.AsyncClient, user_id: int, after: int = 0) -> dict[str, Any]:
    response = await client.get(f"/simulator/api/users/{user_id}/chat", params={"after": after})
    assert response.status_code == 200, response.text
    feed: dict[str, Any] = response.json()
    return feed


# --- who may use it -------------------------------------------------------------------------------


async def test_page_is_for_administrators(admin_client: httpx.AsyncClient) -> None:
    page = await admin_client.get("/simulator", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "<h1>Student simulator</h1>" in page.text
    assert '<script type="module" src="/static/simulator.js">' in page.text
    assert 'href="/simulator" aria-current="page"' in page.text


async def test_page_refuses_counselors(counselor_client: httpx.AsyncClient) -> None:
    page = await counselor_client.get("/simulator", headers={"Accept": "text/html"})
    assert page.status_code == 403
    assert "Only administrators" in page.text


async def test_page_sends_visitors_to_the_login_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/simulator", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/simulator"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/simulator/api/students"),
        ("GET", "/simulator/api/users/7000000001/chat?wait=5"),
        ("GET", "/simulator/api/files/AgACxyz"),
    ],
)
async def test_api_needs_a_login(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not logged in."}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/simulator/api/students", None),
        ("GET", "/simulator/api/users/7000000001/chat?wait=5", None),
        ("POST", "/simulator/api/users", {"first_name": "Mallory"}),
        ("POST", "/simulator/api/users/7000000001/messages", {"text": "hi"}),
    ],
)
async def test_api_refuses_counselors(
    counselor_client: httpx.AsyncClient,
    emulator: EmulatorServer,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = await counselor_client.request(method, path, json=body)
    assert response.status_code == 403
    assert response.json() == {"detail": "Only administrators may do this."}
    assert emulator.state.users == {}


async def test_changes_need_the_csrf_token(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    del admin_client.headers["X-CSRF-Token"]
    response = await admin_client.post("/simulator/api/users", json={"first_name": "Eve"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert emulator.state.users == {}


# --- test students --------------------------------------------------------------------------------


async def test_new_test_student_is_created_in_the_emulator_and_listed_first(
    admin_client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
) -> None:
    await make_student(session, telegram_user_id=700_000_007, full_name="Faith Achieng")
    await make_student(session, telegram_user_id=123_456)  # a real-looking student: not listed

    user = await _new_student(admin_client, last_name="Otieno", username="@achieng_o")

    assert user["first_name"] == "Achieng" and user["username"] == "achieng_o"
    assert emulator.state.users[user["id"]].last_name == "Otieno"
    listed = (await admin_client.get("/simulator/api/students")).json()["students"]
    assert listed == [
        {
            "telegram_user_id": user["id"],
            "name": "Achieng Otieno",
            "username": "achieng_o",
            "in_emulator": True,
            "registered": False,
            "admission_no": None,
            "year_of_study": None,
        },
        {
            "telegram_user_id": 700_000_007,
            "name": "Faith Achieng",
            "username": None,
            "in_emulator": False,
            "registered": True,
            "admission_no": listed[1]["admission_no"],
            "year_of_study": 1,
        },
    ]


async def test_new_test_student_needs_a_first_name(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    response = await admin_client.post("/simulator/api/users", json={"first_name": "  "})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "first_name"]
    assert emulator.state.users == {}


async def test_opening_a_registered_student_adds_them_to_the_emulator_once(
    admin_client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
) -> None:
    await make_student(session, telegram_user_id=700_000_001, full_name="Kevin Mutua Njoroge")

    await make_student(session, telegram_user_id=700_000_002)
    newcomer = await _new_student(admin_client)

    first = await admin_client.put("/simulator/api/users/700000001")
    again = await admin_client.put("/simulator/api/users/700000001")

    assert first.status_code == again.status_code == 200
    assert first.json()["first_name"] == "Kevin"
    assert first.json()["last_name"] == "Mutua Njoroge"
    assert again.json()["id"] == 700_000_001
    assert list(emulator.state.users) == [newcomer["id"], 700_000_001]
    # Still listed in its place among the demo students, not moved to the top.
    listed = (await admin_client.get("/simulator/api/students")).json()["students"]
    assert [(s["telegram_user_id"], s["in_emulator"]) for s in listed] == [
        (newcomer["id"], True),
        (700_000_001, True),
        (700_000_002, False),
    ]


async def test_opening_an_unknown_student_is_404(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    response = await admin_client.put("/simulator/api/users/700000050")
    assert response.status_code == 404
    assert "no test student with Telegram id 700000050" in response.json()["detail"]


# --- acting as the student ------------------------------------------------------------------------


async def test_student_sends_text_and_sees_it_in_the_chat(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    user = await _new_student(admin_client)

    sent = await admin_client.post(
        f"/simulator/api/users/{user['id']}/messages", json={"text": "/start"}
    )

    assert sent.status_code == 201
    assert emulator.state.queue.pending[-1]["message"]["text"] == "/start"
    feed = await _feed(admin_client, user["id"])
    (entry,) = feed["entries"]
    assert (entry["type"], entry["direction"], entry["text"]) == ("message", "in", "/start")
    assert feed["last_seq"] == entry["seq"]


async def test_blank_text_is_refused_before_the_emulator(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    user = await _new_student(admin_client)
    response = await admin_client.post(
        f"/simulator/api/users/{user['id']}/messages", json={"text": "   "}
    )
    assert response.status_code == 422
    assert emulator.state.chat_feed(user["id"])["entries"] == []


async def test_emulator_refusals_keep_their_status_and_reason(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    response = await admin_client.post("/simulator/api/users/999/messages", json={"text": "hi"})
    assert response.status_code == 404
    assert response.json() == {"detail": "no simulated user 999; create it with POST /sim/users"}


async def test_student_shares_contact_and_presses_a_button(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    user = await _new_student(admin_client)
    state = emulator.state
    question = state.add_bot_message(
        state.chat(user["id"]),
        body="Which year?",
        entities=[],
        raw_body=None,
        parse_mode=None,
        reply_markup={"inline_keyboard": [[{"text": "2", "callback_data": "reg_year:2"}]]},
    )
    base = f"/simulator/api/users/{user['id']}"

    contact = await admin_client.post(f"{base}/contact", json={"phone_number": "+254712345678"})
    pressed = await admin_client.post(
        f"{base}/callback", json={"message_id": question.message_id, "data": "reg_year:2"}
    )
    stray = await admin_client.post(
        f"{base}/callback", json={"message_id": question.message_id, "data": "reg_year:9"}
    )

    assert contact.status_code == pressed.status_code == 201
    assert contact.json()["entry"]["contact"] == {
        "phone_number": "+254712345678",
        "first_name": "Achieng",
        "user_id": user["id"],
    }
    assert state.queue.pending[-1]["callback_query"]["data"] == "reg_year:2"
    assert stray.status_code == 409
    assert "no inline button" in stray.json()["detail"]


async def test_media_goes_through_and_comes_back_from_the_dashboard(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    user = await _new_student(admin_client)
    base = f"/simulator/api/users/{user['id']}"

    photo = await admin_client.post(
        f"{base}/media",
        data={"kind": "photo", "caption": "my timetable"},
        files={"file": ("timetable.png", PNG, "image/png")},
    )
    page = await admin_client.post(
        f"{base}/media",
        data={"kind": "document"},
        files={"file": ("notes.html", b"<script>alert(1)</script>", "text/html")},
    )

    assert photo.status_code == page.status_code == 201
    photo_entry, page_entry = (await _feed(admin_client, user["id"]))["entries"]
    assert photo_entry["caption"] == "my timetable"
    assert photo_entry["media"]["url"] == f"/simulator/api/files/{photo_entry['media']['file_id']}"
    image = await admin_client.get(photo_entry["media"]["url"])
    assert image.status_code == 200
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    # An uploaded page must never render on the dashboard's origin.
    download = await admin_client.get(page_entry["media"]["url"])
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''notes.html"
    assert download.headers["x-content-type-options"] == "nosniff"


# --- the live chat feed ---------------------------------------------------------------------------


async def test_long_poll_answers_as_soon_as_the_bot_replies(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    user = await _new_student(admin_client)
    after = (await _feed(admin_client, user["id"]))["last_seq"]
    waiting = asyncio.create_task(
        admin_client.get(
            f"/simulator/api/users/{user['id']}/chat", params={"after": after, "wait": 20}
        )
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    state = emulator.state
    state.add_bot_message(
        state.chat(user["id"]),
        body="Hello!",
        entities=[{"type": "bold", "offset": 0, "length": 5}],
        raw_body=None,
        parse_mode=None,
        reply_markup=None,
    )

    response = await asyncio.wait_for(waiting, timeout=5)

    (entry,) = response.json()["entries"]
    assert (entry["direction"], entry["html"]) == ("out", "<b>Hello</b>!")


async def test_long_poll_wait_is_capped(
    admin_client: httpx.AsyncClient, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulator_api, "MAX_WAIT_SECONDS", 0.2)
    user = await _new_student(admin_client)
    started = time.monotonic()

    response = await admin_client.get(
        f"/simulator/api/users/{user['id']}/chat", params={"after": 10**9, "wait": 60}
    )

    assert response.status_code == 200
    assert response.json()["entries"] == []
    assert time.monotonic() - started < 3


async def test_long_poll_stops_when_the_browser_goes_away() -> None:
    arrived: list[Message] = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        await asyncio.sleep(0.05)
        return arrived.pop(0)

    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []}, receive)
    cancelled = asyncio.Event()

    async def upstream() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "too late"

    result = await asyncio.wait_for(simulator_api._unless_disconnected(request, upstream()), 2)

    assert result is None
    assert cancelled.is_set()


# --- when the simulator cannot work ---------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_emulator_down_is_503_with_a_clear_message(
    admin_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"emulator_port": _closed_port()})

    response = await admin_client.get("/simulator/api/students")

    assert response.status_code == 503
    assert response.json()["detail"].startswith("The Telegram emulator is not running")


async def test_with_a_real_bot_token_the_page_explains_and_the_api_refuses(
    admin_client: httpx.AsyncClient, runtime: Runtime, emulator: EmulatorServer
) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={"telegram_bot_token": SecretStr("123456:real-token")}
    )

    page = await admin_client.get("/simulator", headers={"Accept": "text/html"})
    listing = await admin_client.get("/simulator/api/students")
    created = await admin_client.post("/simulator/api/users", json={"first_name": "Achieng"})

    assert page.status_code == 200
    assert "Not available with a real bot token" in page.text
    assert "simulator.js" not in page.text
    assert listing.status_code == created.status_code == 409
    assert "only with the built-in Telegram emulator" in listing.json()["detail"]
    assert emulator.state.users == {}

"""Updates pushed by Telegram to POST /telegram/webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram import Bot

from counseldesk.bot_app import create_dispatcher
from counseldesk.runtime import Runtime
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.web.app import create_app
from tests.conftest import make_settings

SECRET = "s3cret-token_value"


def _update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Web", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Web"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}]
            if text.startswith("/")
            else [],
        },
    }


@pytest.fixture
async def webhook_client(
    runtime: Runtime, emulator: EmulatorServer, bot: Bot
) -> AsyncIterator[httpx.AsyncClient]:
    runtime.settings = make_settings(
        webhook_url="https://desk.example.edu/telegram/webhook", webhook_secret=SECRET
    )
    app = create_app(runtime)
    app.state.telegram = (bot, create_dispatcher(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _bot_texts(emulator: EmulatorServer, user_id: int) -> list[str]:
    feed = emulator.state.chat_feed(user_id)
    return [
        e["text"] for e in feed["entries"] if e["type"] == "message" and e["direction"] == "out"
    ]


async def test_the_webhook_handles_an_update_once(
    webhook_client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    user = emulator.state.create_user(first_name="Web")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    response = await webhook_client.post(
        "/telegram/webhook", json=_update(5001, user.id, "/start"), headers=headers
    )
    assert response.status_code == 200, response.text
    assert len(_bot_texts(emulator, user.id)) == 2  # welcome + first question

    # Telegram did not see our 200 in time and delivers the same update again.
    again = await webhook_client.post(
        "/telegram/webhook", json=_update(5001, user.id, "/start"), headers=headers
    )
    assert again.status_code == 200
    assert len(_bot_texts(emulator, user.id)) == 2


@pytest.mark.parametrize("secret", [None, "wrong", SECRET + "x"])
async def test_the_webhook_refuses_a_wrong_or_missing_secret(
    webhook_client: httpx.AsyncClient, emulator: EmulatorServer, secret: str | None
) -> None:
    user = emulator.state.create_user(first_name="Eve")
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    response = await webhook_client.post(
        "/telegram/webhook", json=_update(6001, user.id, "/start"), headers=headers
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Wrong or missing Telegram secret token."}
    assert _bot_texts(emulator, user.id) == []


async def test_the_webhook_is_off_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.post("/telegram/webhook", json=_update(1, 1, "/start"))
    assert response.status_code == 404
    assert "not enabled" in response.json()["detail"]

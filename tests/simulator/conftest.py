"""The simulator's API against a real Telegram emulator (on a free port), emptied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from counseldesk.config import Settings
from counseldesk.runtime import Runtime
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.web.app import create_app
from tests.conftest import make_settings


@pytest.fixture
def settings(emulator: EmulatorServer) -> Settings:
    """The app finds the emulator through the settings, as in production."""
    return make_settings(emulator_port=emulator.port)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    # Accept: JSON like the page's script: outside /api/ the app answers errors with an HTML page
    # unless the client asks for JSON.
    app = create_app(runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Accept": "application/json"},
    ) as client:
        yield client

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot

from counseldesk.bot_app import create_dispatcher
from counseldesk.runtime import Runtime
from counseldesk.telegram.bot_factory import create_bot
from counseldesk.telegram.emulator import EmulatorServer
from tests.conftest import make_settings
from tests.e2e.harness import BotHarness


@pytest.fixture(scope="session")
async def emulator_server() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(port=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """One emulator for the session (starting one costs ~0.5 s), emptied for every test."""
    emulator_server.state.reset()
    return emulator_server


@pytest.fixture(scope="session")
async def bot(emulator_server: EmulatorServer) -> AsyncIterator[Bot]:
    bot = create_bot(make_settings(), api_url=emulator_server.url)
    yield bot
    await bot.session.close()  # aiohttp's close pauses a moment: once per session, not per test


@pytest.fixture
def harness(runtime: Runtime, emulator: EmulatorServer, bot: Bot) -> BotHarness:
    """The production dispatcher, with the test's database (and Redis, in the Redis variant)."""
    return BotHarness(emulator, bot, create_dispatcher(runtime))

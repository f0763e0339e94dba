from __future__ import annotations

import pytest
from aiogram import Bot

from counseldesk.bot_app import create_dispatcher
from counseldesk.runtime import Runtime
from counseldesk.telegram.emulator import EmulatorServer
from tests.e2e.harness import BotHarness


@pytest.fixture
def harness(runtime: Runtime, emulator: EmulatorServer, bot: Bot) -> BotHarness:
    """The production dispatcher, with the test's database (and Redis, in the Redis variant)."""
    return BotHarness(emulator, bot, create_dispatcher(runtime))

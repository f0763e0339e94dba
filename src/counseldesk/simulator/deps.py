"""The simulator's dependencies: an emulator client per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends

from counseldesk.errors import Conflict
from counseldesk.simulator.client import EmulatorClient, open_emulator_client
from counseldesk.web.deps import SettingsDep

NEEDS_EMULATOR = (
    "The student simulator works only with the built-in Telegram emulator, and this server "
    "talks to the real Telegram (TELEGRAM_BOT_TOKEN is set). Chat with the bot from a Telegram "
    "account instead, or run counseldesk without TELEGRAM_BOT_TOKEN."
)


async def get_emulator(settings: SettingsDep) -> AsyncIterator[EmulatorClient]:
    if not settings.uses_emulator:
        raise Conflict(NEEDS_EMULATOR)
    async with open_emulator_client(settings.emulator_url) as client:
        yield client


# scope="function": the connection to the emulator closes when the route returns.
EmulatorDep = Annotated[EmulatorClient, Depends(get_emulator, scope="function")]

"""The simulator's dependencies: an emulator client per request, and an admin check for long
polls that gives its database connection back before the wait."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from counseldesk.errors import Conflict
from counseldesk.simulator.client import EmulatorClient, open_emulator_client
from counseldesk.staff.deps import (
    StaffIdentity,
    get_optional_counselor,
    require_admin,
    require_counselor,
)
from counseldesk.staff.sessions import build_session_store
from counseldesk.web.deps import RuntimeDep, SettingsDep

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


async def require_admin_briefly(request: Request, runtime: RuntimeDep) -> StaffIdentity:
    """CurrentAdmin for a long poll. CurrentAdmin's session (SessionDep) keeps its pooled
    connection until the route returns, so every open simulator tab would pin one for 25 s at a
    time; this checks the login in a unit of work of its own that ends before the wait."""
    async with runtime.db.unit_of_work() as session:
        store = build_session_store(runtime.redis, session, runtime.settings)
        counselor = await require_counselor(await get_optional_counselor(request, store, session))
        return StaffIdentity.of(await require_admin(counselor))


LongPollAdmin = Annotated[StaffIdentity, Depends(require_admin_briefly)]

"""Request-scoped dependencies, named with Annotated aliases so routes read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.config import Settings
from counseldesk.db.records import Reader
from counseldesk.runtime import Runtime


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop on every request for a field lookup.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    # The web's one commit: when the route returns, before the response leaves.
    async with runtime.db.unit_of_work() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_reader(runtime: RuntimeDep) -> AsyncIterator[Reader]:
    # For routes that only read: a pooled connection without an ORM session (db/records.py).
    async with runtime.db.reader() as reader:
        yield reader


# Ended after the response has left (the default scope), unlike the session: a reader commits
# nothing that could fail, so the client need not wait for the ROLLBACK of search's settings.
ReaderDep = Annotated[Reader, Depends(get_reader)]

"""aiogram FSM storage in PostgreSQL, for deployments without Redis.

A student half-way through registration keeps their place across restarts (the earlier system
kept this in process memory and lost it). State writes go through the update's own database
session when there is one, so they commit or roll back together with what the handler changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StateType, StorageKey
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.db.engine import Database
from counseldesk.telegram.models import BotState

# Set by the unit-of-work middleware for the duration of one update.
current_session: ContextVar[AsyncSession | None] = ContextVar("bot_session", default=None)


class PostgresStorage(BaseStorage):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.key_builder = DefaultKeyBuilder(with_destiny=True)

    async def _run(self, fn: Any) -> Any:
        session = current_session.get()
        if session is not None:
            return await fn(session)
        async with self.db.unit_of_work() as own:
            return await fn(own)

    async def _upsert(self, key: StorageKey, **values: Any) -> None:
        async def go(session: AsyncSession) -> None:
            stmt = insert(BotState).values(key=self.key_builder.build(key), **values)
            stmt = stmt.on_conflict_do_update(index_elements=[BotState.key], set_=values)
            await session.execute(stmt)

        await self._run(go)

    async def _row(self, key: StorageKey) -> tuple[str | None, dict[str, Any]] | None:
        # Plain columns, not ORM objects: upserts above bypass the identity map.
        async def go(session: AsyncSession) -> tuple[str | None, dict[str, Any]] | None:
            result = await session.execute(
                select(BotState.state, BotState.data).where(
                    BotState.key == self.key_builder.build(key)
                )
            )
            row = result.one_or_none()
            return (row.state, dict(row.data)) if row else None

        found: tuple[str | None, dict[str, Any]] | None = await self._run(go)
        return found

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        if value is None:
            row = await self._row(key)
            if row is None:
                return
            if not row[1]:
                await self._delete(key)
                return
        await self._upsert(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        row = await self._row(key)
        return row[0] if row else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = await self._row(key)
        return row[1] if row else {}

    async def _delete(self, key: StorageKey) -> None:
        async def go(session: AsyncSession) -> None:
            await session.execute(
                delete(BotState).where(BotState.key == self.key_builder.build(key))
            )

        await self._run(go)

    async def close(self) -> None:
        return None

"""Engine, pool and session factory; the unit of work that commits exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from counseldesk.config import Settings
from counseldesk.db.urls import to_asyncpg_url


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        to_asyncpg_url(url),
        pool_size=settings.db_pool_min,
        max_overflow=max(settings.db_pool_max - settings.db_pool_min, 0),
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_idle_timeout,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "server_settings": {"application_name": "counseldesk", "timezone": "UTC"},
        },
    )


class Database:
    """The process's handle on PostgreSQL: one engine and its session factory.

    Tests build one around a connection inside an outer transaction, so everything a test does is
    rolled back at its end.
    """

    def __init__(self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> Database:
        engine = create_engine(url, settings)
        return cls(engine, async_sessionmaker(engine, expire_on_commit=False))

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """Yield a session; commit when the block succeeds, roll back when it raises.

        This is the only place counseldesk commits. Services flush, never commit.
        """
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()

"""Alembic environment: runs migrations over asyncpg, against the URL counseldesk resolved."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from counseldesk.db.urls import to_asyncpg_url
from counseldesk.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by counseldesk.db.migrate"
    engine = create_async_engine(to_asyncpg_url(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


if _in_running_loop():
    # Called from async code (tests, start-up): run in a worker thread with a loop of its own.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, _run_online()).result()
else:
    asyncio.run(_run_online())

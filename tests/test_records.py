"""Direct reads on asyncpg (db/records.py): arguments as SQLAlchemy would send them, and a
connection lost under a read is dropped from the pool."""

from __future__ import annotations

import enum

import asyncpg
import pytest
from sqlalchemy import Enum, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.db.engine import Database
from counseldesk.db.records import fetch_records
from counseldesk.db.urls import to_asyncpg_url
from tests.conftest import make_settings


class Colour(enum.Enum):  # not a StrEnum: only its bind processor makes it a label
    RED = "red-label"


async def test_bind_processors_and_expanding_lists_are_applied(session: AsyncSession) -> None:
    statement = select(
        bindparam("colour", type_=Enum(Colour, native_enum=False, values_callable=_values)),
        literal(5).in_(bindparam("ids", expanding=True)),
        literal(9).in_(bindparam("ids", expanding=True)),
    )
    [row] = await fetch_records(session, statement, {"colour": Colour.RED, "ids": [4, 5, 6]})
    assert tuple(row) == ("red-label", True, False)


def _values(e: type[enum.Enum]) -> list[str]:
    return [m.value for m in e]


async def test_a_connection_lost_under_a_direct_read_leaves_the_pool(database_url: str) -> None:
    db = Database.from_url(database_url, make_settings(db_pool_max=1))
    try:
        async with db.sessionmaker() as session:
            [(pid,)] = await fetch_records(session, select(func.pg_backend_pid()), {})
        dsn = to_asyncpg_url(database_url).set(drivername="postgresql")
        admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

        # Which error depends on when the client notices (a closed connection, or a protocol
        # error while the termination notice is being read).
        with pytest.raises(Exception):  # noqa: B017, PT011
            async with db.sessionmaker() as session:
                await fetch_records(session, select(literal(1)), {})
        # The pool's one connection was replaced, not handed out dead again.
        async with db.sessionmaker() as session:
            [(one,)] = await fetch_records(session, select(literal(1)), {})
        assert one == 1
    finally:
        await db.dispose()

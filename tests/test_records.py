"""Direct reads on asyncpg (db/records.py): arguments as SQLAlchemy would send them, and a
connection lost under a read is dropped from the pool."""

from __future__ import annotations

import enum

import asyncpg
import pytest
from sqlalchemy import Enum, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.db import paging, records
from counseldesk.db.engine import Database
from counseldesk.db.records import fetch_records, use_settings
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


async def _terminate(database_url: str, pid: int) -> None:
    """End a backend from outside, as a PostgreSQL restart would."""
    dsn = to_asyncpg_url(database_url).set(drivername="postgresql")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_lost_under_a_direct_read_leaves_the_pool(database_url: str) -> None:
    db = Database.from_url(database_url, make_settings(db_pool_max=1))
    try:
        async with db.sessionmaker() as session:
            [(pid,)] = await fetch_records(session, select(func.pg_backend_pid()), {})
        await _terminate(database_url, pid)

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


# --- readers: a pooled connection for reads only, with planner settings when asked ---------------

_SETTINGS = {"plan_cache_mode": "force_custom_plan", "enable_seqscan": "off"}
_SHOW = select(
    func.current_setting("plan_cache_mode"),
    func.current_setting("enable_seqscan"),
    func.pg_backend_pid(),
)


class _Sent:
    """The settings a reader sends on its connection."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        original = asyncpg.Connection.execute

        async def execute(connection: asyncpg.Connection, query: str, *args: object) -> str:
            if query.startswith(("SET", "RESET")):
                self.statements.append(query)
            status: str = await original(connection, query, *args)
            return status

        monkeypatch.setattr(asyncpg.Connection, "execute", execute)


async def test_a_readers_settings_stay_on_its_connection_for_the_next_reader_that_wants_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database.from_url(database_url, make_settings(db_pool_max=1))
    sent = _Sent(monkeypatch)
    try:
        async with db.reader() as reader:
            [(mode, seqscan, pid)] = await reader.fetch(_SHOW, {})
            assert (mode, seqscan) == ("auto", "on")
            await use_settings(reader, _SETTINGS)
            [(mode, seqscan, _)] = await reader.fetch(_SHOW, {})
            assert (mode, seqscan) == ("force_custom_plan", "off")
            assert not reader.driver.is_in_transaction()  # no transaction holds them
        assert len(sent.statements) == 1  # both settings, in one round trip
        # The pool's one connection, as the next search gets it: the same backend, already
        # holding the settings, so nothing is sent for them.
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            [(mode, seqscan, same)] = await reader.fetch(_SHOW, {})
        assert (mode, seqscan, same) == ("force_custom_plan", "off", pid)
        assert len(sent.statements) == 1
        # Another setting changes only what differs.
        async with db.reader() as reader:
            await use_settings(reader, {"plan_cache_mode": "force_generic_plan"})
            [(mode, seqscan, _)] = await reader.fetch(_SHOW, {})
        assert (mode, seqscan) == ("force_generic_plan", "on")
        assert (
            sent.statements[-1] == "SET plan_cache_mode = force_generic_plan; RESET enable_seqscan"
        )
    finally:
        await db.dispose()


async def test_a_reader_or_session_that_wants_no_settings_gets_the_defaults(
    database_url: str,
) -> None:
    db = Database.from_url(database_url, make_settings(db_pool_max=1))
    try:
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            [(_, _, pid)] = await reader.fetch(_SHOW, {})
        async with db.reader() as reader:
            # An EXPLAIN runs under whatever the connection holds: nothing is changed for it.
            [(mode, _, _)] = await reader.fetch(_SHOW, {}, any_settings=True)
            assert mode == "force_custom_plan"
            [(mode, seqscan, same)] = await reader.fetch(_SHOW, {})
        assert (mode, seqscan, same) == ("auto", "on", pid)
        # A session checked out of the pool after a reader left its settings.
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            await reader.fetch(_SHOW, {})
        async with db.sessionmaker() as session:
            [(mode, seqscan, same)] = await fetch_records(session, _SHOW, {})
        assert (mode, seqscan, same) == ("auto", "on", pid)
    finally:
        await db.dispose()


async def test_a_failed_read_under_settings_leaves_a_usable_connection(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database.from_url(database_url, make_settings(db_pool_max=1))
    try:
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            with pytest.raises(asyncpg.DivisionByZeroError):
                await reader.fetch(select(literal(1) / literal(0)), {})
        # The settings were set before the failed read, and are still held: a reader that wants
        # them sends nothing, and finds them.
        sent = _Sent(monkeypatch)
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            [(mode, seqscan, _)] = await reader.fetch(_SHOW, {})
        assert (mode, seqscan, sent.statements) == ("force_custom_plan", "off", [])
    finally:
        await db.dispose()


async def test_a_connection_lost_under_a_reader_leaves_the_pool(database_url: str) -> None:
    db = Database.from_url(database_url, make_settings(db_pool_max=1))
    try:
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            [(_, _, pid)] = await reader.fetch(_SHOW, {})
        await _terminate(database_url, pid)
        with pytest.raises(Exception):  # noqa: B017, PT011
            async with db.reader() as reader:
                await reader.fetch(select(literal(1)), {})
        # The replacement holds nothing: the settings are sent again.
        async with db.reader() as reader:
            await use_settings(reader, _SETTINGS)
            [(mode, seqscan, other)] = await reader.fetch(_SHOW, {})
        assert (mode, seqscan) == ("force_custom_plan", "off")
        assert other != pid
    finally:
        await db.dispose()


async def test_on_a_connection_not_the_pools_a_readers_settings_end_with_it(
    db: Database, session: AsyncSession
) -> None:
    # The tests' readers share the test's connection, inside its transaction.
    async with db.reader() as reader:
        await use_settings(reader, _SETTINGS)
        [(mode, _, _)] = await reader.fetch(_SHOW, {})
        assert mode == "force_custom_plan"
    [(mode, seqscan, _)] = await fetch_records(session, _SHOW, {})
    assert (mode, seqscan) == ("auto", "on")


async def test_a_reader_takes_only_plain_settings(db: Database) -> None:
    async with db.reader() as reader:
        with pytest.raises(ValueError, match="not a plain setting"):
            await use_settings(reader, {"plan_cache_mode": "auto; DROP TABLE students"})
        [(mode, _, _)] = await reader.fetch(_SHOW, {})
    assert mode == "auto"  # nothing was sent


async def test_an_estimate_compiles_its_explain_once(session: AsyncSession) -> None:
    # A new EXPLAIN per estimate would add an entry to the compiled-statement cache each time,
    # pushing the hot page statements out of it.
    statement = select(literal(1)).where(literal(2) == bindparam("two"))
    sizes = []
    for _ in range(3):
        paging.forget_estimates()
        assert await paging.estimated_rows(session, "test:explain", statement, {"two": 2}) == 1
        sizes.append(len(records._compiled))
    assert sizes[0] == sizes[1] == sizes[2]

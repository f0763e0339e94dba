"""The dashboard's hot reads, run straight on asyncpg and read as asyncpg Records.

SQLAlchemy still builds and compiles each statement (once per statement object: the callers
keep theirs in module constants or `lru_cache`), so the SQL is written in one place and one
way. Only the execution skips its Result and Row layer, which on a page of 21 tickets with 22
columns cost 0.8 ms to read through Row attributes against 0.05 ms for the same values from the
Records, and ~0.5 ms more to execute (measured in-process on the benchmark database, see
docs/benchmarks.md) — more than PostgreSQL spends on the page.

Transactions: a fetch runs on the session's connection as it is. Before anything else in the
session has run, SQLAlchemy has not sent BEGIN yet, so a read-only request costs one round trip
and no BEGIN/COMMIT; after a write (or an explicit `session.execute`) it runs inside that
transaction and sees its changes.

Values come as asyncpg decodes them: PostgreSQL enums as their labels (`str`; the view
builders turn them into the model's enum), timestamps as aware datetimes, JSON decoded by the
codecs SQLAlchemy installs on each connection.
"""

from __future__ import annotations

from typing import Any

from asyncpg import PostgresError, Record
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.expression import ClauseElement

# Statements are module-level or lru_cached, so this holds a few hundred at most; the bound
# only guards against a caller that builds statements per request.
_MAX_COMPILED = 1024
_compiled: dict[int, tuple[ClauseElement, Compiled]] = {}


def _compile(statement: ClauseElement, dialect: Dialect) -> Compiled:
    entry = _compiled.get(id(statement))
    # The statement is kept in the entry, so its id cannot be reused while the entry lives.
    if entry is not None and entry[0] is statement:
        return entry[1]
    if len(_compiled) >= _MAX_COMPILED:
        del _compiled[next(iter(_compiled))]
    compiled = statement.compile(dialect=dialect)
    _compiled[id(statement)] = (statement, compiled)
    return compiled


def render(
    statement: ClauseElement, dialect: Dialect, params: dict[str, Any]
) -> tuple[str, list[Any]]:
    """The SQL (late-rendered constants and expanding IN lists filled in) and its arguments."""
    compiled = _compile(statement, dialect)
    expanded = compiled.construct_expanded_state(params)  # type: ignore[attr-defined]
    # As SQLAlchemy's own execution does: the statement's bind processors (an enum member to
    # its label, a custom type to what the driver takes), then those of expanded IN lists.
    processors = {**compiled._bind_processors, **expanded.processors}  # type: ignore[attr-defined]
    arguments = []
    for name in expanded.positiontup or ():
        value = expanded.parameters[name]
        processor = processors.get(name)
        arguments.append(value if processor is None or value is None else processor(value))
    return expanded.statement, arguments


async def fetch_records(
    session: AsyncSession, statement: ClauseElement, params: dict[str, Any]
) -> list[Record]:
    """Run a read on the session's connection and return its rows as asyncpg Records."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # a route that just wrote reads its own changes
    connection = await session.connection()
    sql, arguments = render(statement, connection.dialect, params)
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    try:
        records: list[Record] = await driver.fetch(sql, *arguments)  # type: ignore[union-attr]
    except BaseException as error:
        # SQLAlchemy never saw this statement, so it cannot tell a lost connection (PostgreSQL
        # restarted) from a failed query. Only an error PostgreSQL itself reported on a live
        # connection leaves it usable; after anything else (closed, a protocol or network
        # error, a cancelled read) it is dropped here rather than handed out again.
        if driver is None or driver.is_closed() or not isinstance(error, PostgresError):
            await connection.invalidate()
        raise
    return records

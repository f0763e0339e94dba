"""The dashboard's hot reads, run straight on asyncpg and read as asyncpg Records.

SQLAlchemy still builds and compiles each statement (once per statement object: the callers
keep theirs in module constants or `lru_cache`), so the SQL is written in one place and one
way. Only the execution skips its Result and Row layer, which on a page of 21 tickets with 22
columns cost 0.8 ms to read through Row attributes against 0.05 ms for the same values from the
Records, and ~0.5 ms more to execute (measured in-process on the benchmark database, see
docs/benchmarks.md) — more than PostgreSQL spends on the page.

Where they run: on a `Reader` (the list endpoints: a pooled connection and no ORM session),
or on a session's connection as it is. Before anything else in the session has run, SQLAlchemy
has not sent BEGIN yet, so a read costs one round trip and no BEGIN/COMMIT; after a write (or
an explicit `session.execute`) it runs inside that transaction and sees its changes. Planner
settings (`use_settings`, for search) are set on a reader's connection, and last a session's
transaction.

Values come as asyncpg decodes them: PostgreSQL enums as their labels (`str`; the view
builders turn them into the model's enum), timestamps as aware datetimes, JSON decoded by the
codecs SQLAlchemy installs on each connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from asyncpg import Connection, InFailedSQLTransactionError, PostgresError, Record
from sqlalchemy import func, select
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


def _leaves_usable(driver: Connection, error: BaseException) -> bool:
    """Whether a connection may be lent again after a read raised `error`: only an error
    PostgreSQL itself reported on a live connection. Not after anything else (closed, a protocol
    or network error, a cancelled read)."""
    return not driver.is_closed() and isinstance(error, PostgresError)


class Reader:
    """A pooled connection for a request that only reads (the list endpoints), with no ORM
    session around it. In-process, a session cost a read-only request ~130 µs of CPU to create,
    begin, commit and give back; taking the connection from the pool and returning it costs
    ~17 µs (docs/benchmarks.md, session 8). `Database.reader()` lends one.

    No transaction. Planner settings a read asks for (`use_settings`, search) are set on the
    connection itself, and stay there when it goes back to the pool: each round trip cost a
    search request ~0.2 ms of the web process's CPU, and a transaction to hold them took two
    (BEGIN with the settings, ROLLBACK at the end; docs/benchmarks.md, session 12). The pool
    keeps what a connection holds (`held`), so a reader that wants the same settings sends
    nothing, one that wants others changes only those before its first read, and a session
    checked out of the pool gets the defaults back first (db/engine.py).
    """

    _SETTING = re.compile(r"[a-z0-9_]+")

    def __init__(
        self, driver: Connection, dialect: Dialect, held: dict[str, str] | None = None
    ) -> None:
        self.driver = driver
        self.dialect = dialect
        self.broken = False  # the connection must not go back to the pool
        # The settings the connection holds beyond its defaults: the pool's record of them, or,
        # for a connection that is not the pool's (a test's), the reader's own, reset at its end.
        self._own = held is None
        self._held: dict[str, str] = {} if held is None else held
        self._wanted: dict[str, str] = {}  # what this reader's reads run under

    def use_settings(self, settings: Mapping[str, str]) -> None:
        """Planner settings for this reader's reads from now on, sent with the next read if the
        connection does not hold them already. Names and values are the caller's constants."""
        self._wanted.update(self._plain(settings))

    @classmethod
    def _plain(cls, settings: Mapping[str, str]) -> Mapping[str, str]:
        # They are written into SQL (`SET name = value`, and the pool's RESET).
        if not all(cls._SETTING.fullmatch(word) for pair in settings.items() for word in pair):
            raise ValueError(f"not a plain setting: {settings!r}")
        return settings

    async def fetch(
        self, statement: ClauseElement, params: dict[str, Any], any_settings: bool = False
    ) -> list[Record]:
        """Run a read under this reader's settings, or, with `any_settings`, under whatever the
        connection holds (an EXPLAIN, which plans for the values it is given either way)."""
        if not any_settings and self._held != self._wanted:
            await self._apply(self._wanted)
        sql, arguments = render(statement, self.dialect, params)
        records: list[Record] = await self._guarded(self.driver.fetch(sql, *arguments))
        return records

    async def _apply(self, wanted: Mapping[str, str]) -> None:
        held = self._held
        statements = [f"SET {name} = {value}" for name, value in wanted.items()]
        statements += [f"RESET {name}" for name in held if name not in wanted]
        # One round trip; several statements in one message run in one implicit transaction,
        # so a failure leaves the connection holding what it held.
        await self._guarded(self.driver.execute("; ".join(statements)))
        held.clear()
        held.update(wanted)

    async def end(self) -> None:
        """The reads are done: a connection that is not the pool's gets its defaults back."""
        if self._own and self._held and not self.broken:
            # If the transaction they were set in failed (a test's), its rollback takes them
            # back, and the error that failed it is the one to see.
            with suppress(InFailedSQLTransactionError):
                await self._apply({})

    async def _guarded(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except BaseException as error:
            if not _leaves_usable(self.driver, error):
                self.broken = True
            raise


Source = AsyncSession | Reader


async def fetch_records(
    source: Source, statement: ClauseElement, params: dict[str, Any], any_settings: bool = False
) -> list[Record]:
    """Run a read on the reader, or on the session's connection, and return its rows as
    asyncpg Records (`any_settings`: see `Reader.fetch`)."""
    if isinstance(source, Reader):
        return await source.fetch(statement, params, any_settings)
    session = source
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
        # restarted) from a failed query: a connection the error did not leave usable is
        # dropped here rather than handed out again.
        if driver is None or not _leaves_usable(driver, error):
            await connection.invalidate()
        raise
    return records


async def use_settings(source: Source, settings: Mapping[str, str]) -> None:
    """Planner settings for the rest of this request's reads: on a reader's connection (see
    `Reader`), or for the rest of the session's transaction, which this begins."""
    if isinstance(source, Reader):
        source.use_settings(settings)
        return
    # Through SQLAlchemy on purpose: this sends BEGIN, and the settings last only as long as
    # their transaction, which the reads after it then run in.
    connection = await source.connection()
    await connection.execute(
        select(*(func.set_config(name, value, True) for name, value in settings.items()))
    )

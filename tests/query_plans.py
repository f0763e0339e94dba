"""What a piece of code sends to PostgreSQL: the statements of one request (the no-N+1 tests), and
their plans EXPLAINed exactly as sent (the tests that hold the hot queries to their indexes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# The test transaction's own statements (a server sends BEGIN/COMMIT instead), and a reader's
# end of its planner settings (ROLLBACK on a server). Its start is counted: on a server it is
# the settings' statement, BEGIN included.
TEST_TRANSACTION = (
    "SAVEPOINT sa_",
    "RELEASE SAVEPOINT sa_",
    "ROLLBACK TO SAVEPOINT counseldesk_reader",
)
# Statements that have no plan worth reading: EXPLAINs themselves, and search's planner settings.
NOT_PLANNED = ("EXPLAIN", "SELECT set_config", "SAVEPOINT counseldesk_reader")


# Who listens to the statements run straight on asyncpg (db/records.py), which SQLAlchemy's
# events never see.
_driver_listeners: list[Callable[[str, Any], None]] = []


# asyncpg's own queries: it looks up a type the first time a connection meets it (the enums),
# with JIT turned off around the lookup.
_DRIVER_OWN = ("current_setting('jit')", "set_config('jit'", "typeinfo_tree")


def _on_driver_query(record: Any) -> None:
    if any(mark in record.query for mark in _DRIVER_OWN):
        return
    for listener in list(_driver_listeners):
        listener(record.query, record.args)


def record_driver_queries(engine: AsyncEngine) -> None:
    """Let `captured` see what runs on the engine's asyncpg connections directly too (asyncpg's
    query logger, installed on each new connection). Only statements sent with `fetch` or
    `execute` reach it; SQLAlchemy's own go through prepared statements and its events."""

    def install(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(_on_driver_query)

    event.listen(engine.sync_engine, "connect", install)


@asynccontextmanager
async def captured(
    engine: AsyncEngine, *, skip: tuple[str, ...] = TEST_TRANSACTION + NOT_PLANNED
) -> AsyncIterator[list[tuple[str, Any]]]:
    """The statements (and their parameters) sent inside the block, except those starting with
    one of `skip`."""
    # asyncpg reports a query on the event loop's next turn: let earlier reports arrive before
    # listening, and this block's before it ends.
    await asyncio.sleep(0)
    seen: list[tuple[str, Any]] = []

    def keep(statement: str, parameters: Any) -> None:
        if not statement.startswith(skip):
            seen.append((statement, parameters))

    def capture(*args: Any) -> None:
        keep(args[2], args[3])

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    _driver_listeners.append(keep)
    try:
        yield seen
        await asyncio.sleep(0)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        _driver_listeners.remove(keep)


@dataclass
class Plan:
    sql: str
    tree: dict[str, Any]

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.get("Plans", []))

    @property
    def indexes(self) -> set[str]:
        return {n["Index Name"] for n in self.nodes() if "Index Name" in n}

    def scans_of(self, table: str) -> set[str]:
        return {n["Node Type"] for n in self.nodes() if n.get("Relation Name") == table}

    def unbounded_seq_scans(self) -> set[str]:
        """Tables read by a Seq Scan that may go on to the end of the table. A filterless Seq
        Scan right under a Limit stops after that many rows (the bounded count may read its
        first EXACT_COUNT_LIMIT rows that way when the table's visibility map is not yet set)."""
        found = set()
        stack: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(self.tree, None)]
        while stack:
            node, parent = stack.pop()
            if node["Node Type"] == "Seq Scan":
                bounded = parent is not None and parent["Node Type"] == "Limit"
                if not bounded or "Filter" in node:
                    found.add(node["Relation Name"])
            stack.extend((child, node) for child in node.get("Plans", []))
        return found


async def plans(
    session: AsyncSession, engine: AsyncEngine, call: Callable[[], Awaitable[Any]]
) -> list[Plan]:
    """The plans of the statements `call` sends, EXPLAINed exactly as sent."""
    async with captured(engine) as statements:
        await call()
    raw = await (await session.connection()).get_raw_connection()
    plans = []
    for sql, params in statements:
        explained = await raw.driver_connection.fetchval(  # type: ignore[union-attr]
            "EXPLAIN (FORMAT JSON) " + sql, *params
        )
        # SQLAlchemy's asyncpg dialect installs a json codec on its connections.
        tree = json.loads(explained) if isinstance(explained, str) else explained
        plans.append(Plan(sql, tree[0]["Plan"]))
    return plans


async def statements_of(engine: AsyncEngine, client: httpx.AsyncClient, url: str) -> list[str]:
    """The statements one GET of `url` sends (after a warm-up request, as in a running server
    with its estimates cached), each shortened to its first 100 characters."""
    await client.get(url)
    async with captured(engine, skip=TEST_TRANSACTION) as seen:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return [" ".join(statement.split())[:100] for statement, _ in seen]

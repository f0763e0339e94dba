"""EXPLAIN the statements a piece of code sends, exactly as sent, and read the plans: the tests
that hold the hot queries to their indexes (support inbox, appointment list) share this."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if not statement.startswith(("SAVEPOINT", "RELEASE", "EXPLAIN", "SELECT set_config")):
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


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
    with captured(engine) as statements:
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

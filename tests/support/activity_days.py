"""What support_ticket_activity_days says against what the tickets themselves say: the check
behind every test of the per-day counts (triggers, compaction, the demo-data generator)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from counseldesk.support.models import support_ticket_activity_days

DAYS = support_ticket_activity_days.c
KEY = [DAYS.grouping, DAYS.status, DAYS.priority, DAYS.category_id]
KEY += [DAYS.assigned_counselor_id, DAYS.day]
_COUNTED = select(*KEY, func.sum(DAYS.tickets)).group_by(*KEY).having(func.sum(DAYS.tickets) != 0)
# What the counts must say, computed from the tickets themselves.
_ACTUAL = text(
    """
    SELECT GROUPING(status, priority, category_id, assigned_counselor_id),
           status::text, priority::text, category_id, assigned_counselor_id, day, count(*)::int
    FROM (SELECT *, support_ticket_activity_day(last_activity_at) AS day FROM support_tickets) t
    GROUP BY GROUPING SETS (
        (day),
        (status, day), (priority, day), (category_id, day), (assigned_counselor_id, day),
        (status, priority, day), (status, category_id, day),
        (status, assigned_counselor_id, day), (priority, category_id, day),
        (priority, assigned_counselor_id, day), (category_id, assigned_counselor_id, day)
    )
    """
)


def _plain(row: Any) -> tuple[Any, ...]:
    return tuple(getattr(value, "value", value) for value in row)  # enum members as text


async def counted_and_actual(conn: AsyncSession | AsyncConnection) -> tuple[set[Any], set[Any]]:
    """Each view and day with its count: as counted (rows folded), and from the tickets."""
    if isinstance(conn, AsyncSession):
        await conn.flush()
    counted = {_plain(row) for row in (await conn.execute(_COUNTED)).all()}
    actual = {_plain(row) for row in (await conn.execute(_ACTUAL)).all()}
    return counted, actual


async def assert_counts_agree(conn: AsyncSession | AsyncConnection) -> None:
    counted, actual = await counted_and_actual(conn)
    assert counted == actual

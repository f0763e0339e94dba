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
# What the counts must say, computed from the tickets themselves: per day, and per 30-day
# period from 2000-01-01 (its own 16 in `grouping`), for each view.
_ACTUAL = text(
    """
    SELECT GROUPING(status, priority, category_id, assigned_counselor_id) + period,
           status::text, priority::text, category_id, assigned_counselor_id, day, count(*)::int
    FROM (SELECT *, support_ticket_activity_day(last_activity_at) AS day, 0 AS period
          FROM support_tickets
          UNION ALL
          SELECT *, timestamptz '2000-01-01 00:00:00+00'
                    + floor(extract(epoch FROM last_activity_at - '2000-01-01 00:00:00+00')
                            / (30 * 86400)) * interval '720 hours',
                 16
          FROM support_tickets) t
    GROUP BY GROUPING SETS (
        (period, day),
        (status, period, day), (priority, period, day), (category_id, period, day),
        (assigned_counselor_id, period, day),
        (status, priority, period, day), (status, category_id, period, day),
        (status, assigned_counselor_id, period, day), (priority, category_id, period, day),
        (priority, assigned_counselor_id, period, day),
        (category_id, assigned_counselor_id, period, day)
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


async def vacuumed_and_analyzed(conn: AsyncConnection) -> tuple[int, int]:
    """How often the counts table has been vacuumed and analyzed by hand (not by autovacuum).
    Read on a connection of its own: statistics are a snapshot per transaction."""
    row = (
        await conn.execute(
            text(
                "SELECT vacuum_count, analyze_count FROM pg_stat_user_tables "
                "WHERE relname = 'support_ticket_activity_days'"
            )
        )
    ).one()
    return int(row[0]), int(row[1])

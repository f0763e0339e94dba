"""Housekeeping of the support desk's own tables."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

log = logging.getLogger(__name__)

# The triggers of migrations 0006 and 0009 add -1 and +1 rows for each ticket that moves to
# another day, period or view. This folds every key (view and span by `grouping`, and day) that
# has more than one row into one row (none when they cancel out), in one statement: a reader
# sees the rows before or after, never both.
# Rows inserted after the statement starts are not in its snapshot and stay for the next run.
_COMPACT = text(
    """
    WITH folded AS (
        SELECT grouping, status, priority, category_id, assigned_counselor_id, day
        FROM support_ticket_activity_days
        GROUP BY grouping, status, priority, category_id, assigned_counselor_id, day
        HAVING count(*) > 1
    ), gone AS (
        DELETE FROM support_ticket_activity_days d USING folded f
        WHERE d.grouping = f.grouping
          AND d.status IS NOT DISTINCT FROM f.status
          AND d.priority IS NOT DISTINCT FROM f.priority
          AND d.category_id IS NOT DISTINCT FROM f.category_id
          AND d.assigned_counselor_id IS NOT DISTINCT FROM f.assigned_counselor_id
          AND d.day = f.day
        RETURNING d.*
    ), kept AS (
        INSERT INTO support_ticket_activity_days
            (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
        SELECT grouping, status, priority, category_id, assigned_counselor_id, day,
               sum(tickets)
        FROM gone
        GROUP BY grouping, status, priority, category_id, assigned_counselor_id, day
        HAVING sum(tickets) <> 0
        RETURNING 1
    )
    SELECT count(*) FROM gone
    """
)


async def compact_activity_days(session: AsyncSession) -> int:
    """Fold the inbox's per-day ticket counts; returns how many rows were folded. Run by one
    worker at a time (the periodic job's advisory lock)."""
    return int((await session.execute(_COMPACT)).scalar_one())


# The tickets, and all of them as counted by day (grouping 15) and by 30-day period (31), in one
# statement and so one snapshot: the triggers write a ticket and its counts in one transaction.
_TOTALS = text(
    """
    SELECT (SELECT count(*) FROM support_tickets),
           (SELECT coalesce(sum(tickets), 0) FROM support_ticket_activity_days
            WHERE grouping = 15),
           (SELECT coalesce(sum(tickets), 0) FROM support_ticket_activity_days
            WHERE grouping = 31)
    """
)


async def check_activity_days(session: AsyncSession) -> int:
    """Whether the inbox's counts still add up to the tickets; 1 when they do not, and then the
    operator is told how to rebuild them. Hourly: counting the tickets reads an index of every
    one (0.19 s at 2M tickets on the benchmark database, warm).

    Catches tickets added or removed around the triggers (a load or restore with triggers off
    and no recount) and hand edits of either span: a deep `page=N` would then start at the
    wrong place or find nothing. Not a ticket moved to another day around the triggers, which
    leaves every total as it was."""
    tickets, by_day, by_period = (await session.execute(_TOTALS)).one()
    if tickets == by_day == by_period:
        return 0
    log.error(
        "The inbox's ticket counts do not add up: %d tickets, %d counted by day, %d by 30-day "
        "period. Deep page=N may start at the wrong place; run `counseldesk recount-inbox-days`.",
        tickets,
        by_day,
        by_period,
    )
    return 1


# The counts of every view and day from the tickets themselves, as migration 0006 first made
# them; then each view's 30-day periods (ACTIVITY_PERIOD_BIT added to `grouping`) summed from
# those days, as migration 0009 did. On the benchmark database (2M tickets) grouping every
# ticket once per span took 31-45 s; the days alone take 13-15 s, and the periods from the
# ~190,000 day rows 0.1-0.2 s.
_RECOUNT_DAYS = text(
    """
    INSERT INTO support_ticket_activity_days
        (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
    SELECT GROUPING(status, priority, category_id, assigned_counselor_id),
           status, priority, category_id, assigned_counselor_id, day, count(*)
    FROM (SELECT status, priority, category_id, assigned_counselor_id,
                 support_ticket_activity_day(last_activity_at) AS day
          FROM support_tickets) t
    GROUP BY GROUPING SETS (
        (day),
        (status, day), (priority, day), (category_id, day), (assigned_counselor_id, day),
        (status, priority, day), (status, category_id, day),
        (status, assigned_counselor_id, day), (priority, category_id, day),
        (priority, assigned_counselor_id, day), (category_id, assigned_counselor_id, day)
    )
    """
)
_RECOUNT_PERIODS = text(
    """
    INSERT INTO support_ticket_activity_days
        (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
    SELECT grouping + 16, status, priority, category_id, assigned_counselor_id, period,
           sum(tickets)
    FROM (SELECT *, date_bin(interval '30 days', day, timestamptz '2000-01-01 00:00:00+00')
                    AS period
          FROM support_ticket_activity_days
          WHERE grouping < 16) d
    GROUP BY grouping, status, priority, category_id, assigned_counselor_id, period
    """
)


async def recount_activity_days(conn: AsyncConnection | AsyncSession) -> None:
    """Count every ticket again, for a load that bypassed the triggers (the demo-data generator
    runs with `session_replication_role = replica`, which skips them). Ticket writes wait until
    the caller's transaction ends, so none is counted twice or missed (2M tickets: 13-15 s on
    session 7's machine). The
    TRUNCATE waits for a compaction in flight: a DELETE would skip the folded rows it is
    about to commit, and they would be counted on top of the recount."""
    await conn.execute(text("LOCK TABLE support_tickets IN SHARE MODE"))
    await conn.execute(text("TRUNCATE support_ticket_activity_days"))
    await conn.execute(_RECOUNT_DAYS)
    await conn.execute(_RECOUNT_PERIODS)


async def vacuum_activity_days(conn: AsyncConnection) -> None:
    """VACUUM and ANALYZE the counts after a recount filled them from scratch. Without
    statistics the planner guesses at the deep page's statement, and without the visibility
    map its index-only reads visit the table. Autovacuum would get there, but only if it is on
    and not busy with the big tables. `conn` must be in autocommit: VACUUM cannot run inside
    a transaction."""
    await conn.exec_driver_sql("VACUUM (ANALYZE) support_ticket_activity_days")

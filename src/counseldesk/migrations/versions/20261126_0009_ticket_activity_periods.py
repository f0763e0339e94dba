"""Inbox: ticket counts per 30 days next to the counts per day, so a deep `page=N` reads ~70 rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 13:00:00

A deep `page=N` added up a view's days from the newest until it passed the offset: the oldest
page of three years read about 1,100 rows. support_ticket_activity_days now also holds each
view's tickets per 30-day period. A deep page adds up the periods first (about 37 for three
years), then the days of one period (at most 30), then counts inside one day.

Periods are fixed 30-day bins from 2000-01-01 UTC, so each holds exactly 30 of the days and
never depends on a session's time zone. A period's rows are told apart by `grouping`: the
filter columns' GROUPING() bits plus 16. Code of the previous version reads and folds the rows
by `grouping`, so while it still runs during a deploy it never mixes the two spans: no new
column, no new index. The same triggers write both spans; a ticket that moves to another day
within its period nets to zero there and adds no period row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each ticket of a table, counted `n` times (1 inserted, -1 deleted); an updated ticket, -1
# where it was counted and +1 where it is (0006's rows, with the moment instead of its day).
_TICKETS = """
    SELECT status, priority, category_id, assigned_counselor_id, last_activity_at AS at, {n} AS n
    FROM {table}
"""
_MOVED = """
    SELECT OLD.status, OLD.priority, OLD.category_id, OLD.assigned_counselor_id,
           OLD.last_activity_at AS at, -1 AS n
    UNION ALL
    SELECT NEW.status, NEW.priority, NEW.category_id, NEW.assigned_counselor_id,
           NEW.last_activity_at, 1
"""
# Every ticket once per span: under its day (`period` 0) and under its 30-day period
# (`period` 16, added to the grouping). `period` is in every grouping set, so GROUPING() of the
# four filter columns still tells the views apart.
_COUNT = """
    INSERT INTO support_ticket_activity_days
        (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
    SELECT GROUPING(status, priority, category_id, assigned_counselor_id) + period,
           status, priority, category_id, assigned_counselor_id, day, sum(n)
    FROM (SELECT r.status, r.priority, r.category_id, r.assigned_counselor_id, s.period,
                 date_bin(s.span, r.at, timestamptz '2000-01-01 00:00:00+00') AS day, r.n
          FROM ({rows}) r
          CROSS JOIN (VALUES (0, interval '1 day'), (16, interval '30 days')) s(period, span)) t
    GROUP BY GROUPING SETS (
        (period, day),
        (status, period, day), (priority, period, day), (category_id, period, day),
        (assigned_counselor_id, period, day),
        (status, priority, period, day), (status, category_id, period, day),
        (status, assigned_counselor_id, period, day), (priority, category_id, period, day),
        (priority, assigned_counselor_id, period, day),
        (category_id, assigned_counselor_id, period, day)
    )
    HAVING sum(n) <> 0
"""
# 0006's count, for the downgrade: days only.
_DAY_COUNT = """
    INSERT INTO support_ticket_activity_days
        (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
    SELECT GROUPING(status, priority, category_id, assigned_counselor_id),
           status, priority, category_id, assigned_counselor_id, day, sum(n)
    FROM (SELECT status, priority, category_id, assigned_counselor_id,
                 support_ticket_activity_day(at) AS day, n
          FROM ({rows}) r) t
    GROUP BY GROUPING SETS (
        (day),
        (status, day), (priority, day), (category_id, day), (assigned_counselor_id, day),
        (status, priority, day), (status, category_id, day),
        (status, assigned_counselor_id, day), (priority, category_id, day),
        (priority, assigned_counselor_id, day), (category_id, assigned_counselor_id, day)
    )
    HAVING sum(n) <> 0
"""
# The periods from the days, not from the tickets: ~190,000 rows at 2M tickets, not 2M.
# Only the days: rows of periods left by an interrupted run are deleted first.
_PERIODS_FROM_DAYS = """
    INSERT INTO support_ticket_activity_days
        (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
    SELECT grouping + 16, status, priority, category_id, assigned_counselor_id, period,
           sum(tickets)
    FROM (SELECT *, date_bin(interval '30 days', day, timestamptz '2000-01-01 00:00:00+00')
                    AS period
          FROM support_ticket_activity_days
          WHERE grouping < 16) d
    GROUP BY grouping, status, priority, category_id, assigned_counselor_id, period
    HAVING sum(tickets) <> 0
"""
_FUNCTION = """
CREATE OR REPLACE FUNCTION support_tickets_count_{name}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {body};
    RETURN NULL;
END
$$
"""
_ROWS = {
    "inserted": _TICKETS.format(n=1, table="changed"),
    "deleted": _TICKETS.format(n=-1, table="changed"),
    "moved": _MOVED,
}


def _replace_functions(count: str) -> None:
    for name, rows in _ROWS.items():
        op.execute(_FUNCTION.format(name=name, body=count.format(rows=rows).strip()))


def _hold_writers() -> None:
    """Ticket writes, and with them the triggers, wait from here to the commit, and so does the
    worker's compaction: a DELETE running beside a compaction in flight would skip the rows it
    is about to commit (the reason the recount uses TRUNCATE). Readers go on. The order,
    tickets then counts, is the triggers' own, so no writer can deadlock with this."""
    op.execute("LOCK TABLE support_tickets IN SHARE MODE")
    op.execute("LOCK TABLE support_ticket_activity_days IN EXCLUSIVE MODE")


def upgrade() -> None:
    # No ticket may be counted by the old functions after the periods are summed from the days
    # (the time writers wait is in docs/benchmarks.md, session 7).
    _hold_writers()
    _replace_functions(_COUNT)
    op.execute("DELETE FROM support_ticket_activity_days WHERE grouping >= 16")
    op.execute(_PERIODS_FROM_DAYS)


def downgrade() -> None:
    _hold_writers()
    _replace_functions(_DAY_COUNT)
    op.execute("DELETE FROM support_ticket_activity_days WHERE grouping >= 16")

"""Inbox: how many tickets had their last activity on each day, so `page=N` need not count.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 08:00:00

`page=N` of the inbox used to find its first row by counting (N - 1) * limit entries of an
index: 70 ms per million. With a count of tickets per day of last activity — for all tickets,
and per value of any one or two of the filters (status, priority, category, assignee) — it
adds up the days from the newest instead (about a thousand rows for three years) and counts
only inside the one day where the page starts.

Triggers keep the counts in the same transaction as the tickets they count, so a statement
that reads both sees them agree. They only ever INSERT: a change adds rows of -1 for where the
ticket was counted and +1 for where it is. No two transactions wait for each other on a
counter row (today's would be touched by nearly every message otherwise), and none can
deadlock on them. The worker's `compact-activity-days` job folds those rows into one per view
and day every minute.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The day a ticket is counted under: its last activity, cut at midnight UTC. IMMUTABLE (the
# session's time zone plays no part), so triggers and readers agree on every ticket.
_DAY_FUNCTION = """
CREATE OR REPLACE FUNCTION support_ticket_activity_day(at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 day', at, timestamptz '2000-01-01 00:00:00+00')
"""

# The views counted, as grouping sets. `grouping` is PostgreSQL's GROUPING() of the four filter
# columns (a bit set for each column the row is NOT split by): it tells the views apart, so an
# unassigned ticket's row (assignee NULL) is never taken for the all-tickets row.
_COUNT = """
    INSERT INTO support_ticket_activity_days
        (grouping, status, priority, category_id, assigned_counselor_id, day, tickets)
    SELECT GROUPING(status, priority, category_id, assigned_counselor_id),
           status, priority, category_id, assigned_counselor_id, day, sum(n)
    FROM ({rows}) r
    GROUP BY GROUPING SETS (
        (day),
        (status, day), (priority, day), (category_id, day), (assigned_counselor_id, day),
        (status, priority, day), (status, category_id, day),
        (status, assigned_counselor_id, day), (priority, category_id, day),
        (priority, assigned_counselor_id, day), (category_id, assigned_counselor_id, day)
    )
    HAVING sum(n) <> 0
"""
# Each ticket of a table, counted `n` times (1 inserted, -1 deleted).
_TICKETS = """
    SELECT status, priority, category_id, assigned_counselor_id,
           support_ticket_activity_day(last_activity_at) AS day, {n} AS n
    FROM {table}
"""
# An updated ticket: -1 where it was counted, +1 where it is. Views the change does not move
# (a new status on the same day, in the all-tickets view) net to zero and add no row.
_MOVED = """
    SELECT OLD.status, OLD.priority, OLD.category_id, OLD.assigned_counselor_id,
           support_ticket_activity_day(OLD.last_activity_at) AS day, -1 AS n
    UNION ALL
    SELECT NEW.status, NEW.priority, NEW.category_id, NEW.assigned_counselor_id,
           support_ticket_activity_day(NEW.last_activity_at), 1
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
_FUNCTIONS = {
    # INSERT and DELETE: one count for the whole statement, from its transition table, so a
    # bulk load of millions of tickets adds a few thousand rows, not millions.
    "inserted": _COUNT.format(rows=_TICKETS.format(n=1, table="changed")),
    "deleted": _COUNT.format(rows=_TICKETS.format(n=-1, table="changed")),
    "moved": _COUNT.format(rows=_MOVED),
    # TRUNCATE, not DELETE: it waits for a compaction in flight. A DELETE would skip the rows
    # that compaction is about to add, and they would outlive the tickets they count.
    "truncated": "TRUNCATE support_ticket_activity_days",
}

_TRIGGERS = {
    "support_tickets_count_inserted": """
        AFTER INSERT ON support_tickets REFERENCING NEW TABLE AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION support_tickets_count_inserted()""",
    "support_tickets_count_deleted": """
        AFTER DELETE ON support_tickets REFERENCING OLD TABLE AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION support_tickets_count_deleted()""",
    # Only when a counted column or the day changes: most messages move their ticket within
    # the same day and view, and then this trigger does not even start.
    "support_tickets_count_moved": """
        AFTER UPDATE OF status, priority, category_id, assigned_counselor_id, last_activity_at
        ON support_tickets FOR EACH ROW
        WHEN (OLD.status IS DISTINCT FROM NEW.status
              OR OLD.priority IS DISTINCT FROM NEW.priority
              OR OLD.category_id IS DISTINCT FROM NEW.category_id
              OR OLD.assigned_counselor_id IS DISTINCT FROM NEW.assigned_counselor_id
              OR support_ticket_activity_day(OLD.last_activity_at)
                 IS DISTINCT FROM support_ticket_activity_day(NEW.last_activity_at))
        EXECUTE FUNCTION support_tickets_count_moved()""",
    "support_tickets_count_truncated": """
        AFTER TRUNCATE ON support_tickets
        FOR EACH STATEMENT EXECUTE FUNCTION support_tickets_count_truncated()""",
}


def upgrade() -> None:
    op.create_table(
        "support_ticket_activity_days",
        sa.Column("grouping", sa.SmallInteger(), nullable=False),
        sa.Column(
            "status", postgresql.ENUM(name="ticket_status", create_type=False), nullable=True
        ),
        sa.Column(
            "priority", postgresql.ENUM(name="ticket_priority", create_type=False), nullable=True
        ),
        sa.Column("category_id", sa.SmallInteger(), nullable=True),
        sa.Column("assigned_counselor_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_support_ticket_activity_days_view_day",
        "support_ticket_activity_days",
        [
            "grouping",
            "status",
            "priority",
            "category_id",
            "assigned_counselor_id",
            sa.literal_column("day DESC"),
        ],
        postgresql_include=["tickets"],
    )
    # Vacuumed after every thousand changed rows rather than after 20% of the table (37,000
    # rows at 2M tickets): the reader's index-only scan needs the visibility map, and the
    # compaction turns rows over every minute.
    op.execute(
        "ALTER TABLE support_ticket_activity_days SET ("
        "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, "
        "autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000)"
    )
    op.execute(_DAY_FUNCTION)
    for name, body in _FUNCTIONS.items():
        op.execute(_FUNCTION.format(name=name, body=body.strip()))
    # The triggers and the first count in one transaction: creating a trigger holds ticket
    # writes until commit, so no ticket can change between the count and the triggers taking
    # over. The hold lasts as long as the count, one scan of the table (measured in
    # docs/benchmarks.md).
    for name, definition in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")
    op.execute(_COUNT.format(rows=_TICKETS.format(n=1, table="support_tickets")))


def downgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON support_tickets")
    for name in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS support_tickets_count_{name}()")
    op.drop_table("support_ticket_activity_days")
    op.execute("DROP FUNCTION IF EXISTS support_ticket_activity_day(timestamptz)")

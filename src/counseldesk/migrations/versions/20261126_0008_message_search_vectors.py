"""Inbox search: each message's text as a stored, indexed text-search vector.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 11:00:00

A common word is found by walking the inbox in order and testing each ticket's messages. The
test computed `to_tsvector` of every message of each ticket walked: for `landlord` on the
benchmark data, 0.24 ms per ticket and 8.4 of the statement's 9.3 ms (`EXPLAIN ANALYZE`). With
the vector stored, the test reads it.

One column serves both ways of finding a term, so the full-text index moves onto it: the walk
may still take the hashed path (all matches of a rarer term, from the index), and that path
and the per-ticket test must test the same expression. Written by a trigger, like the tickets'
vectors in 0007, and ENABLE ALWAYS for the same reason: the demo-data generator loads with
`session_replication_role = replica`.

On a large table the backfill is the long part. It runs in batches, each its own transaction,
with a heap-only VACUUM after each so that the next batch reuses the space instead of growing
the table. Message writes go on throughout. The old index is dropped last, so processes of the
previous version, still serving during a deploy, keep searching through it. The column becomes
NOT NULL through a validated CHECK, so no step holds a lock that blocks reading or writing
messages while it scans the table. Every step can run again after an interruption.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

# Messages filled per transaction (about 4,000 heap pages), with a heap-only VACUUM after each
# and a full one after every FULL_VACUUM_EVERY.
BATCH = 200_000
FULL_VACUUM_EVERY = 25

MAINTENANCE_MEMORY = "256MB"

_VECTOR_FUNCTION = """
CREATE OR REPLACE FUNCTION support_messages_body_vector() RETURNS trigger AS $$
BEGIN
    NEW.body_vector := to_tsvector('simple', NEW.body);
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
_VECTOR_TRIGGER = """
CREATE TRIGGER support_messages_body_vector
BEFORE INSERT OR UPDATE OF body ON support_messages
FOR EACH ROW EXECUTE FUNCTION support_messages_body_vector()
"""
_FILL = (
    "UPDATE support_messages SET body_vector = to_tsvector('simple', body) "
    "WHERE body_vector IS NULL"
)
_IN_BATCH = " AND id > :start AND id <= :end"
_DROP_CHECK = (
    "ALTER TABLE support_messages DROP CONSTRAINT IF EXISTS ck_support_messages_body_vector"
)


def upgrade() -> None:
    # Committed together before the backfill starts: from here on every message written has
    # its vector.
    op.execute("ALTER TABLE support_messages ADD COLUMN IF NOT EXISTS body_vector tsvector")
    op.execute(_VECTOR_FUNCTION)
    op.execute("DROP TRIGGER IF EXISTS support_messages_body_vector ON support_messages")
    op.execute(_VECTOR_TRIGGER)
    op.execute("ALTER TABLE support_messages ENABLE ALWAYS TRIGGER support_messages_body_vector")
    bind = op.get_bind()

    def run(sql: str, **params: object) -> None:
        bind.execute(sa.text(sql), params)

    with op.get_context().autocommit_block():
        # Room for the full-text index build over every message, which collects entries in
        # this memory before writing them, and for the VACUUMs' lists of dead rows. A larger
        # setting stays.
        smaller = bind.execute(
            sa.text(
                "SELECT pg_size_bytes(current_setting('maintenance_work_mem')) "
                "< pg_size_bytes(:memory)"
            ),
            {"memory": MAINTENANCE_MEMORY},
        ).scalar()
        if smaller:
            run(f"SET maintenance_work_mem = '{MAINTENANCE_MEMORY}'")
        last = int(
            bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM support_messages")).scalar() or 0
        )
        for number, start in enumerate(range(0, last, BATCH), start=1):
            run(_FILL + _IN_BATCH, start=start, end=start + BATCH)
            if number % FULL_VACUUM_EVERY:
                # Heap only: frees the old row versions' space for the next batch.
                run("VACUUM (INDEX_CLEANUP OFF) support_messages")
            else:
                # Also removes the index entries of the old versions. Until then their pages
                # are not all-visible, and each heap-only VACUUM reads them all again.
                run("VACUUM support_messages")
                log.info("message vectors: %s of %s", f"{start + BATCH:,}", f"{last:,}")
        run("VACUUM support_messages")
        # The planner's word frequencies for the new column: without them it takes every term
        # for rare (0.5% of rows), and search's choice between collecting and walking is off.
        run("ANALYZE support_messages")
        # An interrupted run of this migration leaves invalid indexes behind: its own, or a
        # REINDEX's copy (`..._ccnew`). IF NOT EXISTS would keep the first, which the planner
        # never uses; the second would only slow every write.
        invalid = bind.execute(
            sa.text(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = 'support_messages'::regclass AND NOT indisvalid"
            )
        ).scalars()
        for name in list(invalid):
            run(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        run(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_support_messages_body_vector "
            "ON support_messages USING gin (body_vector)"
        )
        # Every message moved, so the B-trees hold twice the entries they need.
        run("REINDEX INDEX CONCURRENTLY pk_support_messages")
        run("REINDEX INDEX CONCURRENTLY ix_support_messages_ticket_id")
        run("RESET maintenance_work_mem")
        # Rows the batches did not reach. Then NOT NULL without a scan under an exclusive
        # lock: each step is its own transaction, VALIDATE scans while writes go on, and
        # SET NOT NULL trusts the validated CHECK instead of scanning again.
        run(_FILL)
        run(_DROP_CHECK)  # left behind by a run interrupted below
        run(
            "ALTER TABLE support_messages ADD CONSTRAINT ck_support_messages_body_vector "
            "CHECK (body_vector IS NOT NULL) NOT VALID"
        )
        run("ALTER TABLE support_messages VALIDATE CONSTRAINT ck_support_messages_body_vector")
        run("ALTER TABLE support_messages ALTER COLUMN body_vector SET NOT NULL")
        run(_DROP_CHECK)
        # Last: processes of the previous version, still serving during a deploy, search
        # message text through the old index until here.
        run("DROP INDEX CONCURRENTLY IF EXISTS ix_support_messages_body_fts")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_support_messages_body_fts "
            "ON support_messages USING gin (to_tsvector('simple', body))"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_support_messages_body_vector")
    op.execute("DROP TRIGGER IF EXISTS support_messages_body_vector ON support_messages")
    op.execute("DROP FUNCTION IF EXISTS support_messages_body_vector()")
    op.drop_column("support_messages", "body_vector")

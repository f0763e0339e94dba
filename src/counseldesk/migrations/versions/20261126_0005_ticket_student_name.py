"""Inbox search: the student's name on each ticket, with its own full-text index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 06:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tickets copied per transaction: each batch locks only its own rows, briefly, so students'
# messages (which update their ticket) keep flowing while millions of tickets are filled in.
# A VACUUM after each batch frees the old row versions for the next batch to reuse, so the
# table does not double (2M tickets: 502 -> 541 MB instead of 1,028). Each updated row still
# leaves its old index entries behind, so the indexes are rebuilt at the end: without that
# every index of the table doubled (the primary key 43 -> 86 MB), and deep inbox pages, which
# walk an index, took twice as long.
BATCH = 50_000

# Fills the name on insert when the inserting code does not (this version sets it itself).
# It exists for the migration and for rolling deploys: tickets opened while the batches run,
# or by processes of the previous version still serving, get their name too, so the column can
# be NOT NULL without a window in which an insert fails or a ticket is missed by search.
_FILL_FUNCTION = """
CREATE OR REPLACE FUNCTION support_tickets_fill_student_name() RETURNS trigger AS $$
BEGIN
    IF NEW.student_name IS NULL THEN
        SELECT full_name INTO NEW.student_name FROM students WHERE id = NEW.student_id;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
_FILL_TRIGGER = """
CREATE TRIGGER support_tickets_fill_student_name BEFORE INSERT ON support_tickets
FOR EACH ROW EXECUTE FUNCTION support_tickets_fill_student_name()
"""
_FILL_UNNAMED = """
UPDATE support_tickets t SET student_name = s.full_name FROM students s
WHERE s.id = t.student_id AND t.student_name IS NULL
"""
_IN_BATCH = " AND t.id > :start AND t.id <= :end"


def upgrade() -> None:
    # Committed together before the backfill starts: from here on every new ticket is named.
    op.execute("ALTER TABLE support_tickets ADD COLUMN IF NOT EXISTS student_name varchar(120)")
    op.execute(_FILL_FUNCTION)
    op.execute("DROP TRIGGER IF EXISTS support_tickets_fill_student_name ON support_tickets")
    op.execute(_FILL_TRIGGER)
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        last = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM support_tickets")).scalar()
        for start in range(0, int(last or 0), BATCH):
            bind.execute(sa.text(_FILL_UNNAMED + _IN_BATCH), {"start": start, "end": start + BATCH})
            bind.execute(sa.text("VACUUM support_tickets"))
        # CONCURRENTLY: a plain REINDEX or CREATE INDEX would hold every ticket write while it
        # builds.
        bind.execute(sa.text("REINDEX TABLE CONCURRENTLY support_tickets"))
        op.create_index(
            "ix_support_tickets_student_name_fts",
            "support_tickets",
            [sa.text("to_tsvector('simple', student_name)")],
            unique=False,
            postgresql_using="gin",
            postgresql_concurrently=True,
            if_not_exists=True,
        )
    # Rows older than the trigger that the batches did not reach (ids below 1), in the same
    # transaction as the constraint, so nothing can slip in between.
    op.execute(_FILL_UNNAMED)
    op.alter_column("support_tickets", "student_name", nullable=False)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS support_tickets_fill_student_name ON support_tickets")
    op.execute("DROP FUNCTION IF EXISTS support_tickets_fill_student_name()")
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_support_tickets_student_name_fts",
            table_name="support_tickets",
            postgresql_using="gin",
            postgresql_concurrently=True,
        )
    op.drop_column("support_tickets", "student_name")

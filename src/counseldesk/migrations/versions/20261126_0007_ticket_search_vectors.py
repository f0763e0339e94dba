"""Inbox search: each ticket's subject and student name as stored text-search vectors.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:00:00

A common search term is found by walking the inbox in order and testing each ticket. The test
computed `to_tsvector` of the subject and of the name for every ticket walked. For the ~2,000
tickets a common first name walks on the benchmark data, that walk took 6.3 ms; the same walk
with two LIKE tests instead took 0.65 ms. Stored, the test reads them.

The vectors are written by a trigger, so every way of writing a ticket keeps them: the
service, earlier versions during a rolling deploy, and the demo-data generator, which loads
with `session_replication_role = replica` (hence ENABLE ALWAYS: the trigger only derives
columns from the row itself, which is as right on a replica as anywhere).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tickets filled per transaction, with a VACUUM after each: as in migration 0005, so the table
# reuses its space instead of doubling, and the indexes are rebuilt once at the end.
BATCH = 50_000

# The same configuration and text as the full-text indexes on the subject and the name (see
# support/models.py), so a walk and a collection find the same tickets.
_VECTORS_FUNCTION = """
CREATE OR REPLACE FUNCTION support_tickets_search_vectors() RETURNS trigger AS $$
BEGIN
    NEW.subject_vector := to_tsvector('simple', NEW.subject);
    NEW.name_vector := to_tsvector('simple', NEW.student_name);
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
# Named to fire after support_tickets_fill_student_name (BEFORE triggers run in name order),
# so a ticket whose name that trigger fills gets the vector of the filled name.
_VECTORS_TRIGGER = """
CREATE TRIGGER support_tickets_search_vectors
BEFORE INSERT OR UPDATE OF subject, student_name ON support_tickets
FOR EACH ROW EXECUTE FUNCTION support_tickets_search_vectors()
"""
_FILL = """
UPDATE support_tickets
SET subject_vector = to_tsvector('simple', subject),
    name_vector = to_tsvector('simple', student_name)
WHERE (subject_vector IS NULL OR name_vector IS NULL)
"""
_IN_BATCH = " AND id > :start AND id <= :end"


def upgrade() -> None:
    # Committed together before the backfill starts: from here on every ticket written has its
    # vectors.
    op.execute(
        "ALTER TABLE support_tickets ADD COLUMN IF NOT EXISTS subject_vector tsvector, "
        "ADD COLUMN IF NOT EXISTS name_vector tsvector"
    )
    op.execute(_VECTORS_FUNCTION)
    op.execute("DROP TRIGGER IF EXISTS support_tickets_search_vectors ON support_tickets")
    op.execute(_VECTORS_TRIGGER)
    op.execute("ALTER TABLE support_tickets ENABLE ALWAYS TRIGGER support_tickets_search_vectors")
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        last = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM support_tickets")).scalar()
        for start in range(0, int(last or 0), BATCH):
            bind.execute(sa.text(_FILL + _IN_BATCH), {"start": start, "end": start + BATCH})
            bind.execute(sa.text("VACUUM support_tickets"))
        # Every updated row left its old index entries behind; CONCURRENTLY keeps ticket
        # writes flowing while the indexes are rebuilt.
        bind.execute(sa.text("REINDEX TABLE CONCURRENTLY support_tickets"))
    # Rows the batches did not reach, in the same transaction as the constraints.
    op.execute(_FILL)
    op.alter_column("support_tickets", "subject_vector", nullable=False)
    op.alter_column("support_tickets", "name_vector", nullable=False)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS support_tickets_search_vectors ON support_tickets")
    op.execute("DROP FUNCTION IF EXISTS support_tickets_search_vectors()")
    op.drop_column("support_tickets", "name_vector")
    op.drop_column("support_tickets", "subject_vector")

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
# table does not double (2M tickets: 502 -> 540 MB instead of 1,028). Each updated row still
# leaves its old index entries behind, so the indexes are rebuilt at the end: without that
# every index of the table doubled (the primary key 43 -> 86 MB), and deep inbox pages, which
# walk an index, took twice as long.
BATCH = 50_000


def upgrade() -> None:
    op.add_column("support_tickets", sa.Column("student_name", sa.String(120), nullable=True))
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        last = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM support_tickets")).scalar()
        for start in range(0, int(last or 0), BATCH):
            bind.execute(
                sa.text(
                    "UPDATE support_tickets t SET student_name = s.full_name FROM students s "
                    "WHERE s.id = t.student_id AND t.id > :start AND t.id <= :end "
                    "AND t.student_name IS NULL"
                ),
                {"start": start, "end": start + BATCH},
            )
            bind.execute(sa.text("VACUUM support_tickets"))
        # Tickets opened while the batches ran (the application of this version fills it in).
        bind.execute(
            sa.text(
                "UPDATE support_tickets t SET student_name = s.full_name FROM students s "
                "WHERE s.id = t.student_id AND t.student_name IS NULL"
            )
        )
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
        )
    op.alter_column("support_tickets", "student_name", nullable=False)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_support_tickets_student_name_fts",
            table_name="support_tickets",
            postgresql_using="gin",
            postgresql_concurrently=True,
        )
    op.drop_column("support_tickets", "student_name")

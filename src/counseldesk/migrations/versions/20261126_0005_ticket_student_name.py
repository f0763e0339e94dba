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
        # Tickets opened while the batches ran (the application of this version fills it in).
        bind.execute(
            sa.text(
                "UPDATE support_tickets t SET student_name = s.full_name FROM students s "
                "WHERE s.id = t.student_id AND t.student_name IS NULL"
            )
        )
        # CONCURRENTLY: a plain CREATE INDEX would hold every ticket write while it builds.
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

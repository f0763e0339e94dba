"""Inbox: an index for status and priority together (the triage view).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # CONCURRENTLY: on a live desk with millions of tickets, a plain CREATE INDEX would hold
    # every ticket write (each student message updates its ticket) while it builds.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_support_tickets_status_priority_activity",
            "support_tickets",
            [
                "status",
                "priority",
                sa.literal_column("last_activity_at DESC"),
                sa.literal_column("id DESC"),
            ],
            unique=False,
            postgresql_include=["category_id", "assigned_counselor_id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_support_tickets_status_priority_activity",
            table_name="support_tickets",
            postgresql_concurrently=True,
        )

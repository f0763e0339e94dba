"""Support desk (tickets, messages, read marks, crisis terms) and the notifications outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:29:22.766088
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DEFAULT_CRISIS_TERMS = [
    "suicide",
    "suicidal",
    "kill myself",
    "killing myself",
    "end my life",
    "take my life",
    "want to die",
    "better off dead",
    "no reason to live",
    "self harm",
    "self-harm",
    "hurt myself",
    "cut myself",
    "cutting myself",
    "overdose",
]


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("ref_key", sa.String(length=120), nullable=True),
        sa.Column(
            "scheduled_for",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "sending", "sent", "failed", "cancelled", name="notification_status"
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["scheduled_for", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notifications_sending",
        "notifications",
        ["claimed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_index(
        "ix_notifications_ref_key",
        "notifications",
        ["ref_key"],
        unique=False,
        postgresql_where=sa.text("ref_key IS NOT NULL"),
    )
    op.create_index(
        "ix_notifications_telegram_user_id", "notifications", ["telegram_user_id"], unique=False
    )
    op.create_table(
        "support_crisis_terms",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_crisis_terms")),
        sa.UniqueConstraint("term", name=op.f("uq_support_crisis_terms_term")),
    )
    # A conservative starting list; admins extend it. Matching is case-insensitive, whole words.
    op.bulk_insert(
        sa.table("support_crisis_terms", sa.column("term", sa.String())),
        [{"term": term} for term in DEFAULT_CRISIS_TERMS],
    )
    op.create_table(
        "support_tickets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("student_id", sa.BigInteger(), nullable=False),
        sa.Column("category_id", sa.SmallInteger(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "in_progress", "replied", "resolved", "closed", name="ticket_status"),
            server_default="open",
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum("low", "medium", "high", "urgent", name="ticket_priority"),
            server_default="medium",
            nullable=False,
        ),
        sa.Column("assigned_counselor_id", sa.Integer(), nullable=True),
        sa.Column("crisis_detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_activity_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_message_preview", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "last_sender_type",
            sa.Enum("student", "counselor", "system", name="sender_type"),
            nullable=True,
        ),
        sa.Column("last_student_message_id", sa.BigInteger(), nullable=True),
        sa.Column("message_count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_counselor_id"],
            ["counselors.id"],
            name=op.f("fk_support_tickets_assigned_counselor_id_counselors"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["support_categories.id"],
            name=op.f("fk_support_tickets_category_id_support_categories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.id"],
            name=op.f("fk_support_tickets_student_id_students"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_tickets")),
    )
    op.create_index(
        "ix_support_tickets_activity",
        "support_tickets",
        [sa.literal_column("last_activity_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_include=["status", "priority", "category_id", "assigned_counselor_id"],
    )
    op.create_index(
        "ix_support_tickets_assignee_activity",
        "support_tickets",
        [
            "assigned_counselor_id",
            sa.literal_column("last_activity_at DESC"),
            sa.literal_column("id DESC"),
        ],
        unique=False,
        postgresql_include=["status", "priority", "category_id"],
    )
    op.create_index(
        "ix_support_tickets_category_activity",
        "support_tickets",
        ["category_id", sa.literal_column("last_activity_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_include=["status", "priority", "assigned_counselor_id"],
    )
    op.create_index(
        "ix_support_tickets_priority_activity",
        "support_tickets",
        ["priority", sa.literal_column("last_activity_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_include=["status", "category_id", "assigned_counselor_id"],
    )
    op.create_index(
        "ix_support_tickets_status_activity",
        "support_tickets",
        ["status", sa.literal_column("last_activity_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_include=["priority", "category_id", "assigned_counselor_id"],
    )
    op.create_index(
        "ix_support_tickets_student",
        "support_tickets",
        ["telegram_user_id", sa.literal_column("last_activity_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_support_tickets_subject_fts",
        "support_tickets",
        [sa.literal_column("to_tsvector('simple', subject)")],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_support_tickets_unassigned_activity",
        "support_tickets",
        [sa.literal_column("last_activity_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("assigned_counselor_id IS NULL"),
        postgresql_include=["status", "priority", "category_id"],
    )
    op.create_table(
        "support_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "sender_type",
            postgresql.ENUM(
                "student", "counselor", "system", name="sender_type", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("counselor_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("is_internal", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("media_kind", sa.String(length=16), nullable=True),
        sa.Column("media_file_id", sa.String(length=255), nullable=True),
        sa.Column("media_file_name", sa.String(length=255), nullable=True),
        sa.Column("media_mime_type", sa.String(length=100), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_support_messages_counselor_id_counselors"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_support_messages_notification_id_notifications"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["support_tickets.id"],
            name=op.f("fk_support_messages_ticket_id_support_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_messages")),
    )
    op.create_index(
        "ix_support_messages_body_fts",
        "support_messages",
        [sa.literal_column("to_tsvector('simple', body)")],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_support_messages_ticket_id",
        "support_messages",
        ["ticket_id", sa.literal_column("id DESC")],
        unique=False,
        postgresql_include=["sender_type"],
    )
    # Inbox search: the student's name (full text) and admission-number prefixes.
    op.create_index(
        "ix_students_full_name_fts",
        "students",
        [sa.literal_column("to_tsvector('simple', full_name)")],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_students_admission_no_prefix",
        "students",
        ["admission_no"],
        unique=False,
        postgresql_ops={"admission_no": "varchar_pattern_ops"},
    )
    op.create_table(
        "support_ticket_reads",
        sa.Column("counselor_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("last_read_message_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_support_ticket_reads_counselor_id_counselors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["support_tickets.id"],
            name=op.f("fk_support_ticket_reads_ticket_id_support_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("counselor_id", "ticket_id", name=op.f("pk_support_ticket_reads")),
    )


def downgrade() -> None:
    op.drop_index("ix_students_admission_no_prefix", table_name="students")
    op.drop_index("ix_students_full_name_fts", table_name="students", postgresql_using="gin")
    op.drop_table("support_ticket_reads")
    op.drop_index("ix_support_messages_ticket_id", table_name="support_messages")
    op.drop_index(
        "ix_support_messages_body_fts", table_name="support_messages", postgresql_using="gin"
    )
    op.drop_table("support_messages")
    op.drop_index(
        "ix_support_tickets_unassigned_activity",
        table_name="support_tickets",
        postgresql_where=sa.text("assigned_counselor_id IS NULL"),
    )
    op.drop_index(
        "ix_support_tickets_subject_fts", table_name="support_tickets", postgresql_using="gin"
    )
    op.drop_index("ix_support_tickets_student", table_name="support_tickets")
    op.drop_index("ix_support_tickets_status_activity", table_name="support_tickets")
    op.drop_index("ix_support_tickets_priority_activity", table_name="support_tickets")
    op.drop_index("ix_support_tickets_category_activity", table_name="support_tickets")
    op.drop_index("ix_support_tickets_assignee_activity", table_name="support_tickets")
    op.drop_index("ix_support_tickets_activity", table_name="support_tickets")
    op.drop_table("support_tickets")
    op.drop_table("support_crisis_terms")
    op.drop_index("ix_notifications_telegram_user_id", table_name="notifications")
    op.drop_index(
        "ix_notifications_ref_key",
        table_name="notifications",
        postgresql_where=sa.text("ref_key IS NOT NULL"),
    )
    op.drop_index(
        "ix_notifications_due",
        table_name="notifications",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("notifications")
    for name in ("sender_type", "ticket_priority", "ticket_status", "notification_status"):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=False)

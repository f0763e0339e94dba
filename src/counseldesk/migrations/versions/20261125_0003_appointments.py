"""Appointments: bookings, working hours, absences, closed days; expiring notifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:46:44.085987
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "office_closed_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_office_closed_days")),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("student_id", sa.BigInteger(), nullable=False),
        sa.Column("counselor_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "confirmed",
                "canceled",
                "completed",
                "no_show",
                name="appointment_status",
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column(
            "canceled_by",
            sa.Enum("student", "counselor", name="appointment_canceled_by"),
            nullable=True,
        ),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reschedule_count", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        postgresql.ExcludeConstraint(
            (sa.text("int8range(counselor_id, counselor_id, '[]')"), "&&"),
            (sa.text("tstzrange(starts_at, ends_at)"), "&&"),
            where=sa.text("status <> 'canceled'"),
            using="gist",
            name="ex_appointments_counselor_time",
        ),
        postgresql.ExcludeConstraint(
            (sa.text("int8range(student_id, student_id, '[]')"), "&&"),
            (sa.text("tstzrange(starts_at, ends_at)"), "&&"),
            where=sa.text("status <> 'canceled'"),
            using="gist",
            name="ex_appointments_student_time",
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_appointments_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_appointments_counselor_id_counselors"),
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["students.id"], name=op.f("fk_appointments_student_id_students")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index(
        "ix_appointments_counselor_starts",
        "appointments",
        ["counselor_id", "starts_at", "id"],
        unique=False,
    )
    op.create_index("ix_appointments_starts", "appointments", ["starts_at", "id"], unique=False)
    op.create_index(
        "ix_appointments_status_starts", "appointments", ["status", "starts_at", "id"], unique=False
    )
    op.create_index(
        "ix_appointments_student_starts", "appointments", ["student_id", "starts_at"], unique=False
    )
    op.create_table(
        "counselor_absences",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("counselor_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "ends_on >= starts_on", name=op.f("ck_counselor_absences_ends_on_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_counselor_absences_counselor_id_counselors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["counselors.id"],
            name=op.f("fk_counselor_absences_created_by_id_counselors"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counselor_absences")),
    )
    op.create_index(
        "ix_counselor_absences_counselor_ends",
        "counselor_absences",
        ["counselor_id", "ends_on"],
        unique=False,
    )
    op.create_table(
        "counselor_schedules",
        sa.Column("counselor_id", sa.Integer(), nullable=False),
        sa.Column("slot_minutes", sa.SmallInteger(), server_default="60", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "slot_minutes BETWEEN 10 AND 240",
            name=op.f("ck_counselor_schedules_slot_minutes_range"),
        ),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_counselor_schedules_counselor_id_counselors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("counselor_id", name=op.f("pk_counselor_schedules")),
    )
    op.create_table(
        "counselor_working_hours",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("counselor_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("starts_at", sa.Time(), nullable=False),
        sa.Column("ends_at", sa.Time(), nullable=False),
        sa.CheckConstraint(
            "ends_at > starts_at", name=op.f("ck_counselor_working_hours_ends_after_start")
        ),
        sa.CheckConstraint(
            "weekday BETWEEN 0 AND 6", name=op.f("ck_counselor_working_hours_weekday_range")
        ),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counselors.id"],
            name=op.f("fk_counselor_working_hours_counselor_id_counselors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counselor_working_hours")),
    )
    op.create_index(
        "ix_counselor_working_hours_counselor",
        "counselor_working_hours",
        ["counselor_id", "weekday"],
        unique=False,
    )
    op.add_column(
        "notifications", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("notifications", "expires_at")
    op.drop_index("ix_counselor_working_hours_counselor", table_name="counselor_working_hours")
    op.drop_table("counselor_working_hours")
    op.drop_table("counselor_schedules")
    op.drop_index("ix_counselor_absences_counselor_ends", table_name="counselor_absences")
    op.drop_table("counselor_absences")
    op.drop_index("ix_appointments_student_starts", table_name="appointments")
    op.drop_index("ix_appointments_status_starts", table_name="appointments")
    op.drop_index("ix_appointments_starts", table_name="appointments")
    op.drop_index("ix_appointments_counselor_starts", table_name="appointments")
    op.drop_table("appointments")
    op.drop_table("office_closed_days")
    sa.Enum(name="appointment_canceled_by").drop(op.get_bind())
    sa.Enum(name="appointment_status").drop(op.get_bind())

"""Appointments and the availability they are booked against.

Times of day (working hours) and dates (absences, closed days) are the office's local wall-clock
values; the instants of appointments are `timestamptz`. The service turns the former into the
latter with the office's time zone, so a daylight-saving change never shifts a working day.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base, CreatedAtMixin, TimestampMixin

DEFAULT_SLOT_MINUTES = 60
MIN_SLOT_MINUTES = 10
MAX_SLOT_MINUTES = 240


class AppointmentStatus(enum.StrEnum):
    PENDING = "pending"  # booked by the student, not yet confirmed by the counselor
    CONFIRMED = "confirmed"
    CANCELED = "canceled"  # kept, never deleted: the history stays
    COMPLETED = "completed"
    NO_SHOW = "no_show"


# Appointments that hold their counselor's time (and may still change).
ACTIVE_STATUSES = frozenset({AppointmentStatus.PENDING, AppointmentStatus.CONFIRMED})


class CanceledBy(enum.StrEnum):
    STUDENT = "student"
    COUNSELOR = "counselor"


class Appointment(TimestampMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        # No two appointments of one counselor overlap, whoever books and however the requests
        # race: the database refuses the second. The counselor id is compared as a one-value
        # range so that the built-in GiST range operators do the work (no btree_gist extension,
        # which the embedded PostgreSQL does not ship). A canceled appointment frees its time.
        ExcludeConstraint(
            (text("int8range(counselor_id, counselor_id, '[]')"), "&&"),
            (text("tstzrange(starts_at, ends_at)"), "&&"),
            name="ex_appointments_counselor_time",
            using="gist",
            where=text("status <> 'canceled'"),
        ),
        # Nor can one student be in two appointments at once.
        ExcludeConstraint(
            (text("int8range(student_id, student_id, '[]')"), "&&"),
            (text("tstzrange(starts_at, ends_at)"), "&&"),
            name="ex_appointments_student_time",
            using="gist",
            where=text("status <> 'canceled'"),
        ),
        # A counselor's day and week, and the free-slot computation.
        Index("ix_appointments_counselor_starts", "counselor_id", "starts_at", "id"),
        # A student's upcoming and past appointments.
        Index("ix_appointments_student_starts", "student_id", "starts_at"),
        # The dashboard's list over everyone, and filtered by status.
        Index("ix_appointments_starts", "starts_at", "id"),
        Index("ix_appointments_status_starts", "status", "starts_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    student_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("students.id"))
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[AppointmentStatus] = mapped_column(
        Enum(
            AppointmentStatus,
            name="appointment_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        server_default=AppointmentStatus.PENDING.value,
    )
    reason: Mapped[str] = mapped_column(Text, server_default="")
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    canceled_by: Mapped[CanceledBy | None] = mapped_column(
        Enum(
            CanceledBy,
            name="appointment_canceled_by",
            values_callable=lambda e: [m.value for m in e],
        )
    )
    canceled_at: Mapped[datetime | None]
    reschedule_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")


class CounselorSchedule(Base):
    """How a counselor's working hours are cut into bookable slots."""

    __tablename__ = "counselor_schedules"
    __table_args__ = (
        CheckConstraint(
            f"slot_minutes BETWEEN {MIN_SLOT_MINUTES} AND {MAX_SLOT_MINUTES}",
            name="slot_minutes_range",
        ),
    )

    counselor_id: Mapped[int] = mapped_column(
        ForeignKey("counselors.id", ondelete="CASCADE"), primary_key=True
    )
    slot_minutes: Mapped[int] = mapped_column(
        SmallInteger, server_default=str(DEFAULT_SLOT_MINUTES)
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class WorkingHours(Base):
    """One range of a counselor's weekly hours (several per weekday are allowed: 9-12, 14-17)."""

    __tablename__ = "counselor_working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_counselor_working_hours_counselor", "counselor_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday, as date.weekday()
    starts_at: Mapped[time] = mapped_column(Time)
    ends_at: Mapped[time] = mapped_column(Time)


class Absence(CreatedAtMixin, Base):
    """Days a counselor is away (inclusive range of office-local dates)."""

    __tablename__ = "counselor_absences"
    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="ends_on_after_start"),
        Index("ix_counselor_absences_counselor_ends", "counselor_id", "ends_on"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id", ondelete="CASCADE"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), server_default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("counselors.id", ondelete="SET NULL")
    )


class ClosedDay(CreatedAtMixin, Base):
    """A day the whole office is closed (a public holiday): nobody can be booked."""

    __tablename__ = "office_closed_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), server_default="")

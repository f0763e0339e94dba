from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Identity,
    Index,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base, TimestampMixin


class Student(TimestampMixin, Base):
    """A registered student. `telegram_user_id` is the shard key of everything a student owns."""

    __tablename__ = "students"
    __table_args__ = (
        CheckConstraint("year_of_study BETWEEN 1 AND 6", name="year_of_study_range"),
        # "Registered this week" on the home page: a range scan instead of a full count.
        Index("ix_students_created_at", "created_at"),
        # Inbox search by the student's name (full-text, 'simple': names are not English words).
        Index(
            "ix_students_full_name_fts",
            text("to_tsvector('simple', full_name)"),
            postgresql_using="gin",
        ),
        # Inbox search by admission-number prefix ("SC/12" finds SC/1201/2024): byte-wise order,
        # whatever the database's collation, so a prefix is one contiguous index range.
        Index(
            "ix_students_admission_no_prefix",
            "admission_no",
            postgresql_ops={"admission_no": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    # Stored upper-cased and trimmed, so "sc/123/2024" and "SC/123/2024 " are one student.
    admission_no: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(32))
    year_of_study: Mapped[int] = mapped_column(SmallInteger)
    # False once Telegram tells us the student blocked the bot; nothing is sent to them then.
    is_reachable: Mapped[bool] = mapped_column(server_default="true")
    language_code: Mapped[str] = mapped_column(String(8), server_default="en")


class UserSession(Base):
    """Telegram activity of anyone who talks to the bot, registered or not (the seed's table)."""

    __tablename__ = "user_sessions"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    last_name: Mapped[str | None] = mapped_column(String(128))
    language_code: Mapped[str | None] = mapped_column(String(16))
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

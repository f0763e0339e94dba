from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Enum,
    FetchedValue,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base, CreatedAtMixin


def _pg_enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    REPLIED = "replied"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class SenderType(enum.StrEnum):
    STUDENT = "student"
    COUNSELOR = "counselor"
    SYSTEM = "system"  # timeline events: status changes, assignment, crisis alerts


class SupportCategory(CreatedAtMixin, Base):
    """What a support conversation is about; students pick one when they open a conversation."""

    __tablename__ = "support_categories"

    id: Mapped[int] = mapped_column(SmallInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    sort_order: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    is_active: Mapped[bool] = mapped_column(server_default="true")


# A name's distinct words, as its search vector lists them (sorted): `name_word(1)` is the first.
# The name-word indexes cover the first NAME_WORD_PLACES; names with more are few.
NAME_WORD_PLACES = 4
NAME_WORD_COUNT = "cardinality(tsvector_to_array(name_vector))"


def name_word(place: int) -> str:
    """SQL for the word at `place` (from 1) among a ticket's name's distinct words, NULL past
    the last. Written the same way in the indexes and in the queries that must match them."""
    return f"(tsvector_to_array(name_vector))[{place}]"


class SupportTicket(Base):
    """A support conversation between one student and the counseling team.

    The inbox lists tickets by last activity; `last_activity_at` and the denormalized preview
    columns are kept by the service in the same transaction as each message, so a page of the
    inbox never touches the messages table.
    """

    __tablename__ = "support_tickets"
    __table_args__ = (
        # One index per inbox view, each ending in the keyset (last_activity_at, id), and each
        # carrying the other filter columns (INCLUDE): any combination of filters is then an
        # index-only walk of one of them — the page's keys, the bounded count and the key lookup
        # behind a deep `page=N` never visit the table; only the page's own rows do.
        Index(
            "ix_support_tickets_activity",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_include=["status", "priority", "category_id", "assigned_counselor_id"],
        ),
        Index(
            "ix_support_tickets_status_activity",
            "status",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_include=["priority", "category_id", "assigned_counselor_id"],
        ),
        # The triage view (open and urgent, say): status and priority together. With the
        # status index alone, the page's count walked every open ticket to find the few urgent
        # ones (18,000 entries for 540 on the benchmark data, 2.8 ms a page).
        Index(
            "ix_support_tickets_status_priority_activity",
            "status",
            "priority",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_include=["category_id", "assigned_counselor_id"],
        ),
        Index(
            "ix_support_tickets_priority_activity",
            "priority",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_include=["status", "category_id", "assigned_counselor_id"],
        ),
        Index(
            "ix_support_tickets_category_activity",
            "category_id",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_include=["status", "priority", "assigned_counselor_id"],
        ),
        Index(
            "ix_support_tickets_assignee_activity",
            "assigned_counselor_id",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_include=["status", "priority", "category_id"],
        ),
        Index(
            "ix_support_tickets_unassigned_activity",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_where=text("assigned_counselor_id IS NULL"),
            postgresql_include=["status", "priority", "category_id"],
        ),
        # The student's own list in the bot.
        Index("ix_support_tickets_student", "telegram_user_id", text("last_activity_at DESC")),
        Index(
            "ix_support_tickets_subject_fts",
            text("to_tsvector('simple', subject)"),
            postgresql_using="gin",
        ),
        Index(
            "ix_support_tickets_student_name_fts",
            text("to_tsvector('simple', student_name)"),
            postgresql_using="gin",
        ),
        # A name of two or more words searched by the pairs of its words (migration 0010).
        Index("ix_support_tickets_name_pairs", "name_pairs", postgresql_using="gin"),
        # One word searched in names, in inbox order (migration 0011): for each place a word
        # can hold among a name's distinct words, the tickets by that word, newest activity
        # first. A common first name's page is then the first entries of a few lists, where
        # walking the inbox for it tested every ticket until twenty matched (~2,000 of them).
        *(
            Index(
                f"ix_support_tickets_name_word_{place}",
                # Parenthesized: an index expression other than a plain call must be.
                text(f"({name_word(place)})"),
                text("last_activity_at DESC"),
                text("id DESC"),
                postgresql_where=text(f"{name_word(place)} IS NOT NULL"),
            )
            for place in range(1, NAME_WORD_PLACES + 1)
        ),
        # Names with more distinct words than that, in inbox order, tested one by one.
        Index(
            "ix_support_tickets_long_name_activity",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_where=text(f"{NAME_WORD_COUNT} > {NAME_WORD_PLACES}"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)  # shard key
    student_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("students.id", ondelete="CASCADE")
    )
    category_id: Mapped[int | None] = mapped_column(
        SmallInteger, ForeignKey("support_categories.id", ondelete="SET NULL")
    )
    subject: Mapped[str] = mapped_column(String(200))
    # The student's name, copied when the ticket is opened, for search: an inbox walk for a
    # common name tests each ticket's own row instead of first hashing every matching student
    # (13,000 heap reads for a common first name). Students cannot rename themselves; a
    # change of a student's name must update their tickets in the same transaction.
    student_name: Mapped[str] = mapped_column(String(120))
    # to_tsvector('simple', ...) of the subject and of the name, written by a trigger
    # (migration 0007) from the row itself, for search's walk through the inbox: reading a
    # stored vector instead of computing two per ticket made the walk ~10x cheaper. Deferred:
    # nothing in Python reads them.
    subject_vector: Mapped[Any] = mapped_column(
        TSVECTOR, deferred=True, server_default=FetchedValue()
    )
    name_vector: Mapped[Any] = mapped_column(TSVECTOR, deferred=True, server_default=FetchedValue())
    # Every pair of distinct words of the name, 'a b' with a < b, written by the same trigger
    # (migration 0010): a full name's search reads one short list per pair instead of
    # intersecting the long lists of each word (0.07 ms against 1.9 ms on the benchmark data).
    name_pairs: Mapped[list[str]] = mapped_column(
        ARRAY(Text), deferred=True, server_default=FetchedValue()
    )
    status: Mapped[TicketStatus] = mapped_column(
        _pg_enum(TicketStatus, "ticket_status"), server_default=TicketStatus.OPEN.value
    )
    priority: Mapped[TicketPriority] = mapped_column(
        _pg_enum(TicketPriority, "ticket_priority"), server_default=TicketPriority.MEDIUM.value
    )
    assigned_counselor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("counselors.id", ondelete="SET NULL")
    )
    crisis_detected_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    closed_at: Mapped[datetime | None]
    # Denormalized from the newest visible message, for the inbox list.
    last_activity_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_message_preview: Mapped[str] = mapped_column(String(200), server_default="")
    last_sender_type: Mapped[SenderType | None] = mapped_column(_pg_enum(SenderType, "sender_type"))
    last_student_message_id: Mapped[int | None] = mapped_column(BigInteger)
    message_count: Mapped[int] = mapped_column(Integer, server_default="0")


# How many tickets had their last activity on each day (midnight UTC to midnight), and in each
# 30-day period (`day` is its first day; periods are counted from 2000-01-01), for the inbox
# views `page=N` adds up periods and days for instead of counting index entries (see
# support/repository.py): all tickets, and per value of any one or two of the filters
# (status, priority, category, assignee). `grouping` tells the views and spans apart: a bit set
# for each filter column the row is not split by (see ACTIVITY_DAY_COLUMNS), and
# ACTIVITY_PERIOD_BIT on a period's rows. Kept by triggers on support_tickets (migrations 0006
# and 0009) that only insert -1/+1 rows; `compact_activity_days` folds them. No key: several
# rows for a view and day are normal between compactions.
support_ticket_activity_days = Table(
    "support_ticket_activity_days",
    Base.metadata,
    Column("grouping", SmallInteger, nullable=False),
    Column("status", _pg_enum(TicketStatus, "ticket_status"), nullable=True),
    Column("priority", _pg_enum(TicketPriority, "ticket_priority"), nullable=True),
    Column("category_id", SmallInteger, nullable=True),
    Column("assigned_counselor_id", Integer, nullable=True),
    Column("day", DateTime(timezone=True), nullable=False),
    Column("tickets", Integer, nullable=False),
    Index(
        "ix_support_ticket_activity_days_view_day",
        "grouping",
        "status",
        "priority",
        "category_id",
        "assigned_counselor_id",
        text("day DESC"),
        # The reader's running sum comes straight from the index (an index-only scan).
        postgresql_include=["tickets"],
    ),
)
# The filter columns in GROUPING() order: bit (3 - i) of `grouping` is set when the row is not
# split by column i.
ACTIVITY_DAY_COLUMNS = ("status", "priority", "category_id", "assigned_counselor_id")
# A period's rows: `grouping` has this bit set too, so code that reads or folds the days by
# `grouping` (as the version before migration 0009 did) never mixes the two spans.
ACTIVITY_PERIOD_BIT = 16
ACTIVITY_PERIOD_DAYS = 30


class SupportMessage(Base):
    """One entry of a conversation: the student's message, a counselor's reply or internal note,
    or a system event (status change, assignment) shown in the timeline."""

    __tablename__ = "support_messages"
    __table_args__ = (
        # A chat page: the newest 50 of a ticket, then older ones before a message id. The sender
        # type rides along so the inbox's unread counts (student messages after a read mark) are
        # index-only.
        Index(
            "ix_support_messages_ticket_id",
            "ticket_id",
            text("id DESC"),
            postgresql_include=["sender_type"],
        ),
        # Full-text search of message text, on the stored vector (migration 0008): a walk that
        # tests each ticket's messages and a lookup of all matches test the same column.
        Index("ix_support_messages_body_vector", "body_vector", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("support_tickets.id", ondelete="CASCADE")
    )
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)  # shard key, as on the ticket
    sender_type: Mapped[SenderType] = mapped_column(_pg_enum(SenderType, "sender_type"))
    counselor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("counselors.id", ondelete="SET NULL")
    )
    body: Mapped[str] = mapped_column(Text, server_default="")
    # to_tsvector('simple', body), written by a trigger (migration 0008): search's walk tests
    # each ticket's messages, and computing the vector of each was ~90% of that walk.
    # Deferred: nothing in Python reads it.
    body_vector: Mapped[Any] = mapped_column(TSVECTOR, deferred=True, server_default=FetchedValue())
    # Internal notes are for counselors only; the student never receives them.
    is_internal: Mapped[bool] = mapped_column(server_default="false")
    # Media the student sent: Telegram's file id, fetched through the server when shown.
    media_kind: Mapped[str | None] = mapped_column(String(16))
    media_file_id: Mapped[str | None] = mapped_column(String(255))
    media_file_name: Mapped[str | None] = mapped_column(String(255))
    media_mime_type: Mapped[str | None] = mapped_column(String(100))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The outbox row that carries a counselor's reply to the student (its delivery state).
    notification_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("notifications.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TicketRead(Base):
    """How far a counselor has read a ticket; unread = student messages after this id."""

    __tablename__ = "support_ticket_reads"

    counselor_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("counselors.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("support_tickets.id", ondelete="CASCADE"), primary_key=True
    )
    last_read_message_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CrisisTerm(CreatedAtMixin, Base):
    """Words or phrases that mark a message as a possible crisis (admins edit the list)."""

    __tablename__ = "support_crisis_terms"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    term: Mapped[str] = mapped_column(String(100), unique=True)

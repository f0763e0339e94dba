from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, Identity, Index, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base


class ProcessedUpdate(Base):
    """Telegram update ids already handled. Telegram re-delivers a webhook update when it did not
    get a 200 in time; the row, written in the same transaction as the handling, makes the second
    delivery a no-op."""

    __tablename__ = "telegram_processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class BotState(Base):
    """Conversation state of the bot (aiogram FSM) when there is no Redis: survives restarts."""

    __tablename__ = "bot_states"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, object]] = mapped_column(JSONB, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    # Claimed by a worker and handed to Telegram; if the worker dies here, delivery is unknown
    # and the row is not sent again (a duplicate is worse than a visible "failed, retry?").
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Notification(Base):
    """The outbox: one message to send to a student on Telegram.

    Written in the same transaction as the change that causes it, sent by the worker after
    commit. A rollback therefore sends nothing; a crash after commit loses nothing.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        # The worker's claim query: due pending rows, oldest first. Partial, so it stays as small
        # as the backlog however many millions of sent rows the table keeps.
        Index(
            "ix_notifications_due",
            "scheduled_for",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_notifications_ref_key", "ref_key", postgresql_where=text("ref_key IS NOT NULL")),
        # The sweep for sends interrupted by a dead worker: as small as the in-flight set.
        Index(
            "ix_notifications_sending",
            "claimed_at",
            postgresql_where=text("status = 'sending'"),
        ),
        Index("ix_notifications_telegram_user_id", "telegram_user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    # The chat to send to (a student's private chat id is their user id); the shard key.
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    # What to send: {"text", "reply_markup"?, "media"?: {"kind", "file_id"}, "ref"?: {...}}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Lets a feature find its rows again (cancel a reminder, show a reply's delivery state).
    ref_key: Mapped[str | None] = mapped_column(String(120))
    scheduled_for: Mapped[datetime] = mapped_column(server_default=func.now())
    # Not worth sending from this moment on (a reminder of an appointment that has started):
    # the worker cancels such a row instead of sending it late.
    expires_at: Mapped[datetime | None]
    status: Mapped[NotificationStatus] = mapped_column(
        Enum(
            NotificationStatus,
            name="notification_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        server_default=NotificationStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

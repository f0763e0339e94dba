from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, func
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

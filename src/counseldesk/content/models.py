from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, SmallInteger, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base


class OfficeSettings(Base):
    """The office's contact details the bot shows; a single row (id = 1)."""

    __tablename__ = "office_settings"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="1")
    office_name: Mapped[str] = mapped_column(String(120), server_default="Counseling Office")
    phone: Mapped[str] = mapped_column(String(64), server_default="")
    email: Mapped[str] = mapped_column(String(254), server_default="")
    location: Mapped[str] = mapped_column(Text, server_default="")
    office_hours: Mapped[str] = mapped_column(Text, server_default="")
    website: Mapped[str] = mapped_column(String(254), server_default="")
    # Shown to a student in crisis; plain text, one contact per line.
    emergency_contacts: Mapped[str] = mapped_column(Text, server_default="")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base, CreatedAtMixin, TimestampMixin


class Role(enum.StrEnum):
    COUNSELOR = "counselor"
    ADMIN = "admin"


class Counselor(TimestampMixin, Base):
    __tablename__ = "counselors"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # Stored lower-cased; the unique constraint then makes e-mail addresses case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="staff_role", values_callable=lambda e: [m.value for m in e]),
        server_default=Role.COUNSELOR.value,
    )
    is_active: Mapped[bool] = mapped_column(server_default="true")
    last_login_at: Mapped[datetime | None]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class StaffSession(CreatedAtMixin, Base):
    """A dashboard login, when sessions live in PostgreSQL (no REDIS_URL).

    The cookie holds a random token; only its SHA-256 is stored, so a leaked table logs nobody in.
    """

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    counselor_id: Mapped[int] = mapped_column(
        ForeignKey("counselors.id", ondelete="CASCADE"), index=True
    )
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(64))

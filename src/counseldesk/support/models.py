from __future__ import annotations

from sqlalchemy import Identity, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from counseldesk.db.base import Base, CreatedAtMixin


class SupportCategory(CreatedAtMixin, Base):
    """What a support conversation is about; students pick one when they open a conversation."""

    __tablename__ = "support_categories"

    id: Mapped[int] = mapped_column(SmallInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    sort_order: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    is_active: Mapped[bool] = mapped_column(server_default="true")

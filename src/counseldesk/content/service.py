"""Office contact details and other content the bot shows."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.content.models import OfficeSettings


async def get_office_settings(session: AsyncSession) -> OfficeSettings:
    """The single settings row; created with defaults the first time it is asked for."""
    settings = await session.get(OfficeSettings, 1)
    if settings is None:
        await session.execute(insert(OfficeSettings).values(id=1).on_conflict_do_nothing())
        settings = await session.get(OfficeSettings, 1)
        assert settings is not None
    return settings


async def do_update_office_settings(session: AsyncSession, **fields: str) -> OfficeSettings:
    settings = await get_office_settings(session)
    for name, value in fields.items():
        if name not in OfficeSettings.__table__.columns or name in {"id", "updated_at"}:
            raise ValueError(f"unknown office setting {name!r}")
        setattr(settings, name, value.strip())
    await session.flush()
    return settings

"""Housekeeping of dashboard sessions kept in PostgreSQL."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.staff.models import StaffSession


async def prune_expired_staff_sessions(session: AsyncSession) -> int:
    result = await session.execute(delete(StaffSession).where(StaffSession.expires_at < func.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""Read-only lookups the bot needs beyond appointments.service, kept apart from the handlers so
that no handler runs a query of its own."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.models import WorkingHours
from counseldesk.staff.models import Counselor


async def bookable_counselors(
    session: AsyncSession, *, offset: int, limit: int
) -> tuple[list[tuple[int, str]], bool]:
    """A page of (id, name) of the counselors a student can book: active, with working hours
    (the same rule load_availability applies); and whether more follow."""
    rows = await session.execute(
        select(Counselor.id, Counselor.full_name)
        .where(
            Counselor.is_active.is_(True),
            exists().where(WorkingHours.counselor_id == Counselor.id),
        )
        .order_by(Counselor.full_name, Counselor.id)
        .offset(offset)
        .limit(limit + 1)
    )
    found = [(row.id, row.full_name) for row in rows]
    return found[:limit], len(found) > limit


async def counselor_name(session: AsyncSession, counselor_id: int) -> str | None:
    counselor = await session.get(Counselor, counselor_id)
    return counselor.full_name if counselor is not None else None

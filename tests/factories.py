"""Test data: small typed async factories that add a row, flush, and return it.

Each takes keyword arguments for what a test cares about and fills the rest with unique, valid
values. They bypass the services' validation on purpose, so a test can build any state.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.staff import passwords
from counseldesk.staff.models import Counselor, Role
from counseldesk.students.models import Student, UserSession

DEFAULT_PASSWORD = "correct horse battery"

_sequence = itertools.count(1)


def _next() -> int:
    return next(_sequence)


async def make_counselor(
    session: AsyncSession,
    *,
    email: str | None = None,
    full_name: str | None = None,
    password: str = DEFAULT_PASSWORD,
    role: Role = Role.COUNSELOR,
    is_active: bool = True,
) -> Counselor:
    n = _next()
    counselor = Counselor(
        email=(email or f"counselor{n}@example.org").strip().lower(),
        full_name=full_name or f"Test Counselor {n}",
        password_hash=passwords.hasher.hash(password),
        role=role,
        is_active=is_active,
    )
    session.add(counselor)
    await session.flush()
    return counselor


async def make_admin(session: AsyncSession, **kwargs: object) -> Counselor:
    return await make_counselor(session, role=Role.ADMIN, **kwargs)  # type: ignore[arg-type]


async def make_student(
    session: AsyncSession,
    *,
    telegram_user_id: int | None = None,
    admission_no: str | None = None,
    full_name: str | None = None,
    phone: str = "+254700000000",
    year_of_study: int = 1,
    created_at: datetime | None = None,
) -> Student:
    n = _next()
    student = Student(
        telegram_user_id=telegram_user_id or 7_000_000_000 + n,
        admission_no=admission_no or f"TST/{n:05d}/2026",
        full_name=full_name or f"Test Student {n}",
        phone=phone,
        year_of_study=year_of_study,
    )
    if created_at is not None:
        student.created_at = created_at
    session.add(student)
    await session.flush()
    return student


async def make_user_session(
    session: AsyncSession,
    *,
    telegram_user_id: int | None = None,
    first_name: str | None = "Test",
    last_seen_at: datetime | None = None,
) -> UserSession:
    """A Telegram user's activity row (registered or not)."""
    row = UserSession(
        telegram_user_id=telegram_user_id or 8_000_000_000 + _next(),
        first_name=first_name,
    )
    if last_seen_at is not None:
        row.first_seen_at = last_seen_at
        row.last_seen_at = last_seen_at
    session.add(row)
    await session.flush()
    return row

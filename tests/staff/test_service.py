"""Counselor account rules, called directly (as the CLI and the pages do)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.errors import Conflict, InvalidInput, NotAuthenticated, TooManyRequests
from counseldesk.staff import passwords, service
from counseldesk.staff.login_limiter import MemoryLoginLimiter
from counseldesk.staff.models import Counselor, Role
from tests.factories import DEFAULT_PASSWORD, make_counselor


async def test_create_counselor_normalizes_and_hashes(session: AsyncSession) -> None:
    counselor = await service.create_counselor(
        session,
        email="  Grace.Akinyi@Example.ORG ",
        full_name="  Grace   Akinyi ",
        password="long enough",
        role=Role.ADMIN,
    )

    assert counselor.id is not None
    assert counselor.email == "grace.akinyi@example.org"
    assert counselor.full_name == "Grace Akinyi"
    assert counselor.role is Role.ADMIN
    assert counselor.is_active is True
    assert counselor.password_hash.startswith("$argon2id$")
    assert "long enough" not in counselor.password_hash


@pytest.mark.parametrize(
    ("email", "full_name", "password", "message"),
    [
        ("not-an-email", "Name", "long enough", "Invalid email address"),
        ("a@b", "Name", "long enough", "Invalid email address"),
        ("ok@example.org", "   ", "long enough", "full name must not be empty"),
        ("ok@example.org", "Name", "1234567", "at least 8 characters"),
        ("ok@example.org", "Name", "x" * 257, "at most 256 characters"),
    ],
)
async def test_create_counselor_validates(
    session: AsyncSession, email: str, full_name: str, password: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await service.create_counselor(session, email=email, full_name=full_name, password=password)


async def test_duplicate_email_is_a_conflict_and_the_session_stays_usable(
    session: AsyncSession,
) -> None:
    await service.create_counselor(
        session, email="dup@example.org", full_name="First", password="long enough"
    )

    with pytest.raises(Conflict, match="already exists"):
        await service.create_counselor(
            session, email="DUP@example.org", full_name="Second", password="long enough"
        )

    names = (await session.scalars(select(Counselor.full_name))).all()
    assert "First" in names
    assert "Second" not in names


async def test_authenticate(session: AsyncSession) -> None:
    counselor = await make_counselor(session, email="jo@example.org")

    assert await service.authenticate(session, email="JO@example.org ", password=DEFAULT_PASSWORD)
    for email, password in [("jo@example.org", "wrong"), ("nobody@example.org", DEFAULT_PASSWORD)]:
        with pytest.raises(NotAuthenticated, match=r"Invalid email or password\."):
            await service.authenticate(session, email=email, password=password)

    counselor.is_active = False
    with pytest.raises(NotAuthenticated, match=r"Invalid email or password\."):
        await service.authenticate(session, email="jo@example.org", password=DEFAULT_PASSWORD)


async def test_log_in_counts_failures_and_forgives_after_success(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    limiter = MemoryLoginLimiter(max_failures=2, window_seconds=60)

    async def attempt(password: str, address: str = "10.0.0.1") -> Counselor:
        return await service.log_in(
            session, limiter, email=counselor.email, password=password, client_address=address
        )

    with pytest.raises(NotAuthenticated):
        await attempt("wrong")
    await attempt(DEFAULT_PASSWORD)  # resets
    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            await attempt("wrong")
    with pytest.raises(TooManyRequests):
        await attempt(DEFAULT_PASSWORD)
    # The same email from another address is a different counter.
    assert await attempt(DEFAULT_PASSWORD, address="10.0.0.2") is counselor


async def test_change_password(session: AsyncSession) -> None:
    counselor = await make_counselor(session)

    with pytest.raises(InvalidInput, match="current password is not correct"):
        await service.change_password(session, counselor, "wrong", "a new password")
    with pytest.raises(InvalidInput, match="at least 8"):
        await service.change_password(session, counselor, DEFAULT_PASSWORD, "short")

    await service.change_password(session, counselor, DEFAULT_PASSWORD, "a new password")

    assert await passwords.verify_password(counselor.password_hash, "a new password")
    assert not await passwords.verify_password(counselor.password_hash, DEFAULT_PASSWORD)


async def test_update_profile_and_set_active(session: AsyncSession) -> None:
    counselor = await make_counselor(session)

    await service.update_profile(session, counselor, full_name=" New   Name ")
    await service.set_active(session, counselor, active=False)

    await session.refresh(counselor)
    assert counselor.full_name == "New Name"
    assert counselor.is_active is False


async def test_list_and_count(session: AsyncSession) -> None:
    before = await service.count_active_counselors(session)
    active = await make_counselor(session, full_name="Zed")
    inactive = await make_counselor(session, full_name="Abe", is_active=False)

    listed = list(await service.list_counselors(session))

    assert await service.count_active_counselors(session) == before + 1
    assert listed.index(active) < listed.index(inactive)  # active ones first
    assert await service.find_counselor_by_email(session, active.email.upper()) is active


async def test_needs_rehash_and_unreadable_hashes() -> None:
    assert passwords.needs_rehash("not a hash")
    assert not await passwords.verify_password("not a hash", "anything")

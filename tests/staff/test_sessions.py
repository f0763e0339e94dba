"""Both session stores behind the one SessionStore protocol."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.staff.models import StaffSession
from counseldesk.staff.sessions import (
    PgSessionStore,
    RedisSessionStore,
    SessionRecord,
    SessionStore,
    build_session_store,
    hash_token,
    needs_refresh,
)
from tests.conftest import make_settings
from tests.factories import make_counselor

IDLE = timedelta(hours=12)


def _store(redis: Redis | None, session: AsyncSession) -> SessionStore:
    return build_session_store(redis, session, make_settings())


async def test_store_is_chosen_by_redis(session: AsyncSession, redis_or_none: Redis | None) -> None:
    expected = PgSessionStore if redis_or_none is None else RedisSessionStore
    assert isinstance(_store(redis_or_none, session), expected)


async def test_create_get_delete(session: AsyncSession, redis_or_none: Redis | None) -> None:
    store = _store(redis_or_none, session)
    counselor = await make_counselor(session)

    token = await store.create(counselor.id, user_agent="pytest", ip_address="10.0.0.1")
    record = await store.get(token)

    assert record is not None
    assert record.counselor_id == counselor.id
    assert datetime.now(UTC) - record.last_seen_at < timedelta(seconds=5)
    assert await store.get(token + "x") is None
    await store.touch(token)
    await store.delete(token)
    assert await store.get(token) is None


async def test_delete_all_keeps_the_named_session(
    session: AsyncSession, redis_or_none: Redis | None
) -> None:
    store = _store(redis_or_none, session)
    counselor = await make_counselor(session)
    other = await make_counselor(session)
    tokens = [await store.create(counselor.id, user_agent=None, ip_address=None) for _ in range(3)]
    others = await store.create(other.id, user_agent=None, ip_address=None)

    await store.delete_all(counselor.id, keep=tokens[0])

    assert await store.get(tokens[0]) is not None
    assert await store.get(tokens[1]) is None
    assert await store.get(tokens[2]) is None
    assert await store.get(others) is not None
    await store.delete_all(counselor.id)
    assert await store.get(tokens[0]) is None


async def test_postgres_keeps_only_the_hash_and_drops_expired_rows(session: AsyncSession) -> None:
    store = PgSessionStore(session, IDLE)
    counselor = await make_counselor(session)
    old = await store.create(counselor.id, user_agent="x" * 400, ip_address="10.0.0.1")
    await session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == hash_token(old))
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    assert await store.get(old) is None  # expired

    new = await store.create(counselor.id, user_agent=None, ip_address=None)

    hashes = (
        await session.scalars(
            select(StaffSession.token_hash).where(StaffSession.counselor_id == counselor.id)
        )
    ).all()
    assert hashes == [hash_token(new)]  # the expired row went at the next login
    assert new not in hashes


async def test_redis_sessions_expire_after_the_idle_time(
    session: AsyncSession, redis: Redis
) -> None:
    store = RedisSessionStore(redis, timedelta(minutes=30))
    token = await store.create(1, user_agent=None, ip_address=None)
    key = f"counseldesk:staff_session:{hash_token(token)}"
    assert 1790 <= await redis.ttl(key) <= 1800
    assert token not in str(await redis.keys("*"))


def test_needs_refresh() -> None:
    now = datetime.now(UTC)
    assert not needs_refresh(SessionRecord(1, now - timedelta(minutes=4)), IDLE, now)
    assert needs_refresh(SessionRecord(1, now - timedelta(minutes=5)), IDLE, now)
    # Short idle times refresh proportionally sooner.
    assert needs_refresh(SessionRecord(1, now - timedelta(seconds=40)), timedelta(minutes=6), now)

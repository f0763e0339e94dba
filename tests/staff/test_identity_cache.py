"""The per-process identity cache: how long it remembers, what it forgets, how big it gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.runtime import Runtime
from counseldesk.staff.identity import IdentityCache, StaffIdentity
from counseldesk.staff.models import Counselor, Role, StaffSession
from counseldesk.staff.sessions import (
    REDIS_PREFIX,
    SESSION_COOKIE,
    build_session_store,
    hash_token,
)
from tests.conftest import log_in, make_settings
from tests.factories import make_counselor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _staff(counselor_id: int) -> StaffIdentity:
    return StaffIdentity(counselor_id, f"c{counselor_id}@example.org", "C", Role.COUNSELOR)


def test_an_entry_lives_for_the_ttl_or_less_when_asked() -> None:
    clock = Clock()
    cache = IdentityCache(5, clock=clock)
    cache.put("a", _staff(1))
    cache.put("b", _staff(2), at_most=1)  # the session's refresh is due sooner
    cache.put("c", _staff(3), at_most=60)  # never longer than the ttl

    clock.now += 1
    assert cache.get("a") == _staff(1)
    assert cache.get("b") is None
    clock.now += 4
    assert cache.get("a") is None
    assert cache.get("c") is None
    assert len(cache) == 0  # expired entries are dropped when met


def test_a_zero_ttl_or_an_overdue_refresh_remembers_nothing() -> None:
    assert len(_filled(IdentityCache(0))) == 0
    cache = IdentityCache(5)
    cache.put("a", _staff(1), at_most=-3)
    assert cache.get("a") is None


def _filled(cache: IdentityCache) -> IdentityCache:
    cache.put("a", _staff(1))
    return cache


def test_forgetting_one_session_or_all_of_a_counselor() -> None:
    cache = IdentityCache(5)
    for digest, counselor_id in (("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2)):
        cache.put(digest, _staff(counselor_id))

    cache.forget("a1")
    cache.forget("unknown")
    assert cache.get("a1") is None

    cache.forget_counselor(1, keep="a3")
    assert cache.get("a2") is None
    assert cache.get("a3") == _staff(1)
    assert cache.get("b1") == _staff(2)


def test_an_ended_session_is_not_put_back_by_a_lookup_that_was_already_running() -> None:
    clock = Clock()
    cache = IdentityCache(5, clock=clock)
    cache.forget("ended")  # logout here, while another request was looking the session up
    cache.forget_counselor(7, keep="kept")  # a password change keeps the changer's session
    cache.put("ended", _staff(1))
    cache.put("other-of-7", _staff(7))
    cache.put("kept", _staff(7))
    assert cache.get("ended") is None
    assert cache.get("other-of-7") is None
    assert cache.get("kept") == _staff(7)

    clock.now += 5  # later lookups (they read the store anew) are remembered again
    cache.put("other-of-7", _staff(7))
    assert cache.get("other-of-7") == _staff(7)


def test_the_oldest_entries_make_room_beyond_the_bound() -> None:
    cache = IdentityCache(5, max_entries=3)
    for i in range(5):
        cache.put(f"d{i}", _staff(i))
    assert len(cache) == 3
    assert [cache.get(f"d{i}") is not None for i in range(5)] == [False, False, True, True, True]


async def test_ending_sessions_through_the_store_forgets_them(
    runtime: Runtime, session: AsyncSession
) -> None:
    counselor = await make_counselor(session, email="forget@example.org")
    store = build_session_store(runtime.redis, session, runtime.settings, runtime.identities)
    tokens = [await store.create(counselor.id, user_agent=None, ip_address=None) for _ in "abc"]
    for token in tokens:
        runtime.identities.put(hash_token(token), StaffIdentity.of(counselor))

    await store.delete(tokens[0])
    assert runtime.identities.get(hash_token(tokens[0])) is None
    assert await store.get(tokens[0]) is None

    await store.delete_all(counselor.id, keep=tokens[2])
    assert runtime.identities.get(hash_token(tokens[1])) is None
    assert runtime.identities.get(hash_token(tokens[2])) is not None
    assert await store.get(tokens[2]) is not None


async def test_a_session_due_for_its_refresh_is_looked_up_and_refreshed(
    client: httpx.AsyncClient, runtime: Runtime, counselor: Counselor, session: AsyncSession
) -> None:
    await log_in(client, counselor.email)
    token = client.cookies[SESSION_COOKIE]
    digest = hash_token(token)
    store = build_session_store(runtime.redis, session, make_settings())
    # The session was last refreshed an hour ago, as after a while of use.
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    if runtime.redis is not None:
        await runtime.redis.hset(REDIS_PREFIX + digest, "last_seen_at", an_hour_ago.isoformat())
    else:
        await session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == digest)
            .values(last_seen_at=an_hour_ago)
        )
    assert runtime.identities.get(digest) is None  # logging in does not fill the cache

    assert (await client.get("/api/auth/me")).status_code == 200

    refreshed = await store.get(token)
    assert refreshed is not None and refreshed.last_seen_at > an_hour_ago + timedelta(minutes=59)
    assert runtime.identities.get(digest) is not None

"""The staff JSON API: login, /me, logout, roles, rate limiting, persistence, password change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from counseldesk.db.engine import Database
from counseldesk.runtime import Runtime
from counseldesk.staff import passwords
from counseldesk.staff.identity import IdentityCache
from counseldesk.staff.models import Counselor, StaffSession
from counseldesk.staff.sessions import REDIS_PREFIX, SESSION_COOKIE, hash_token
from counseldesk.web.app import create_app
from tests.conftest import log_in, make_settings
from tests.factories import DEFAULT_PASSWORD, make_counselor
from tests.query_plans import TEST_TRANSACTION, captured

INVALID = {"detail": "Invalid email or password."}


def _set_cookie(response: httpx.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_login_sets_a_session_cookie_and_me_answers(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    response = await _login(client, counselor.email.upper(), DEFAULT_PASSWORD)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["counselor"] == {
        "id": counselor.id,
        "email": counselor.email,
        "full_name": "Wanjiku Kamau",
        "role": "counselor",
        "is_active": True,
    }
    assert body["csrf_token"] == client.cookies["counseldesk_csrf"]
    cookie = _set_cookie(response, SESSION_COOKIE).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == counselor.email


async def test_session_lives_in_redis_or_postgres(
    client: httpx.AsyncClient,
    counselor: Counselor,
    session: AsyncSession,
    redis_or_none: Redis | None,
) -> None:
    await log_in(client, counselor.email)
    digest = hash_token(client.cookies[SESSION_COOKIE])
    rows = await session.scalar(
        select(func.count()).select_from(StaffSession).where(StaffSession.token_hash == digest)
    )
    if redis_or_none is None:
        assert rows == 1
    else:
        assert rows == 0
        assert await redis_or_none.hget(REDIS_PREFIX + digest, "counselor_id") == str(counselor.id)
        ttl = await redis_or_none.ttl(REDIS_PREFIX + digest)
        assert 12 * 3600 - 60 < ttl <= 12 * 3600


async def test_cookie_is_secure_when_configured(
    db: Database, redis_or_none: Redis | None, counselor: Counselor
) -> None:
    runtime = Runtime(settings=make_settings(cookie_secure=True), db=db, redis=redis_or_none)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await _login(client, counselor.email, DEFAULT_PASSWORD)
    assert response.status_code == 200
    assert "secure" in _set_cookie(response, SESSION_COOKIE).lower()
    assert "secure" in _set_cookie(response, "counseldesk_csrf").lower()


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    wrong = await _login(client, counselor.email, "not the password")
    unknown = await _login(client, "nobody@example.org", DEFAULT_PASSWORD)
    malformed = await _login(client, "not an email", DEFAULT_PASSWORD)

    for response in (wrong, unknown, malformed):
        assert response.status_code == 401
        assert response.json() == INVALID
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_login_needs_a_json_body(client: httpx.AsyncClient, counselor: Counselor) -> None:
    # What a cross-site form could send: it must not log anyone in.
    response = await client.post(
        "/api/auth/login",
        content=f'{{"email": "{counselor.email}", "password": "{DEFAULT_PASSWORD}"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 422
    assert SESSION_COOKIE not in client.cookies


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_deactivated_counselor_cannot_log_in_and_is_cut_off(
    client: httpx.AsyncClient, runtime: Runtime, counselor: Counselor, session: AsyncSession
) -> None:
    clock = _Clock()
    runtime.identities = IdentityCache(5, clock=clock)
    await log_in(client, counselor.email)
    assert (await client.get("/api/auth/me")).status_code == 200

    counselor.is_active = False  # by hand, as an administrator would in the database
    await session.flush()

    # Reads may be answered from the identity cache for its few seconds...
    assert (await client.get("/api/auth/me")).status_code == 200
    clock.now += 5
    # ... and not after them.
    assert (await client.get("/api/auth/me")).status_code == 401
    refused = await _login(client, counselor.email, DEFAULT_PASSWORD)
    assert refused.status_code == 401
    assert refused.json() == INVALID


async def test_a_change_is_refused_at_once_after_a_deactivation_and_so_are_reads_then(
    client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    await log_in(client, counselor.email)
    assert (await client.get("/api/auth/me")).status_code == 200  # remembered from here on

    counselor.is_active = False
    await session.flush()

    # A route that changes something reads the account itself, not the cache.
    changed = await client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a brand new password"},
    )
    assert changed.status_code == 401
    # Having seen it, the process forgets the session for reads too.
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_without_the_identity_cache_a_deactivation_ends_reads_at_once(
    db: Database, redis_or_none: Redis | None, counselor: Counselor, session: AsyncSession
) -> None:
    settings = make_settings(staff_identity_cache_seconds=0)
    app = create_app(Runtime(settings=settings, db=db, redis=redis_or_none))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await log_in(client, counselor.email)
        assert (await client.get("/api/auth/me")).status_code == 200
        counselor.is_active = False
        await session.flush()
        assert (await client.get("/api/auth/me")).status_code == 401


async def test_the_login_check_is_remembered_between_requests(
    engine: AsyncEngine, client: httpx.AsyncClient, runtime: Runtime, counselor: Counselor
) -> None:
    await log_in(client, counselor.email)
    async with captured(engine, skip=TEST_TRANSACTION) as first:
        assert (await client.get("/api/auth/me")).status_code == 200
    async with captured(engine, skip=TEST_TRANSACTION) as second:
        assert (await client.get("/api/auth/me")).status_code == 200
    # The counselor's row, and the session's row when sessions live in PostgreSQL; then nothing.
    assert len(first) == (1 if runtime.redis is not None else 2), first
    assert second == []
    assert len(runtime.identities) == 1


async def test_logout_ends_the_session(client: httpx.AsyncClient, counselor: Counselor) -> None:
    await log_in(client, counselor.email)
    stolen = client.cookies[SESSION_COOKIE]

    response = await client.post("/api/auth/logout")

    assert response.status_code == 204
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/api/auth/me")).status_code == 401
    # The server forgot it too: replaying the old cookie does not work.
    client.cookies.set(SESSION_COOKIE, stolen)
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_me_without_a_session_is_401_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not logged in."}


async def test_made_up_session_cookie_is_401(client: httpx.AsyncClient) -> None:
    client.cookies.set(SESSION_COOKIE, "made-up")
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_counselor_list_is_for_admins_only(
    client: httpx.AsyncClient, counselor: Counselor, admin: Counselor
) -> None:
    assert (await client.get("/api/staff/counselors")).status_code == 401

    await log_in(client, counselor.email)
    refused = await client.get("/api/staff/counselors")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Only administrators may do this."}

    await client.post("/api/auth/logout")
    await log_in(client, admin.email)
    listed = await client.get("/api/staff/counselors")
    assert listed.status_code == 200
    assert {c["email"] for c in listed.json()} >= {counselor.email, admin.email}


async def test_failed_logins_are_rate_limited(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    for _ in range(5):  # settings.login_max_failures
        assert (await _login(client, counselor.email, "wrong password")).status_code == 401

    blocked = await _login(client, counselor.email, DEFAULT_PASSWORD)

    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 900
    assert blocked.json()["detail"].startswith("Too many failed attempts. Try again in")
    # Another email from the same address is not affected.
    other = await _login(client, "someone@example.org", "wrong password")
    assert other.status_code == 401


async def test_successful_login_resets_the_failure_count(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    for _ in range(4):
        await _login(client, counselor.email, "wrong password")
    assert (await _login(client, counselor.email, DEFAULT_PASSWORD)).status_code == 200
    for _ in range(4):
        assert (await _login(client, counselor.email, "wrong password")).status_code == 401
    assert (await _login(client, counselor.email, DEFAULT_PASSWORD)).status_code == 200


async def test_session_survives_a_restart(runtime: Runtime, counselor: Counselor) -> None:
    """Two app instances on one database (and Redis): a restart, or a second server."""
    first = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://testserver"
    )
    async with first:
        await log_in(first, counselor.email)
        cookies = dict(first.cookies)

    restarted = Runtime(settings=runtime.settings, db=runtime.db, redis=runtime.redis)
    second = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(restarted)),
        base_url="http://testserver",
        cookies=cookies,
    )
    async with second:
        me = await second.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["id"] == counselor.id


async def test_login_upgrades_an_outdated_password_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from argon2 import PasswordHasher

    old_hash = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(DEFAULT_PASSWORD)
    counselor = await make_counselor(session)
    counselor.password_hash = old_hash
    await session.flush()

    await log_in(client, counselor.email)

    await session.refresh(counselor)
    assert counselor.password_hash != old_hash
    assert not passwords.needs_rehash(counselor.password_hash)
    assert counselor.last_login_at is not None


async def test_password_change(
    client: httpx.AsyncClient, runtime: Runtime, counselor: Counselor
) -> None:
    await log_in(client, counselor.email)

    wrong = await client.post(
        "/api/auth/password",
        json={"current_password": "not it", "new_password": "a new password"},
    )
    assert wrong.status_code == 422
    assert wrong.json() == {"detail": "Your current password is not correct."}

    short = await client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "short"},
    )
    assert short.status_code == 422

    done = await client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a new password"},
    )
    assert done.status_code == 204
    assert (await client.get("/api/auth/me")).status_code == 200  # this session continues

    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await _login(other, counselor.email, DEFAULT_PASSWORD)).status_code == 401
        assert (await _login(other, counselor.email, "a new password")).status_code == 200


async def test_password_change_ends_the_other_sessions(
    runtime: Runtime, counselor: Counselor
) -> None:
    app = create_app(runtime)
    laptop = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    phone = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with laptop, phone:
        await log_in(laptop, counselor.email)
        await log_in(phone, counselor.email)

        response = await laptop.post(
            "/api/auth/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": "a new password"},
        )

        assert response.status_code == 204
        assert (await laptop.get("/api/auth/me")).status_code == 200
        assert (await phone.get("/api/auth/me")).status_code == 401


async def test_password_change_is_rate_limited(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    await log_in(client, counselor.email)
    for _ in range(5):
        response = await client.post(
            "/api/auth/password",
            json={"current_password": "guess", "new_password": "a new password"},
        )
        assert response.status_code == 422
    blocked = await client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a new password"},
    )
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


async def test_idle_session_expires(
    client: httpx.AsyncClient,
    counselor: Counselor,
    session: AsyncSession,
    redis_or_none: Redis | None,
) -> None:
    await log_in(client, counselor.email)
    digest = hash_token(client.cookies[SESSION_COOKIE])
    if redis_or_none is None:
        await session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == digest)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    else:
        await redis_or_none.delete(REDIS_PREFIX + digest)  # what Redis does when the TTL ends

    assert (await client.get("/api/auth/me")).status_code == 401


@pytest.mark.parametrize("age_minutes", [1, 10])
async def test_use_refreshes_the_session_at_most_every_few_minutes(
    client: httpx.AsyncClient,
    counselor: Counselor,
    session: AsyncSession,
    redis_or_none: Redis | None,
    age_minutes: int,
) -> None:
    await log_in(client, counselor.email)
    digest = hash_token(client.cookies[SESSION_COOKIE])
    seen = datetime.now(UTC) - timedelta(minutes=age_minutes)
    if redis_or_none is None:
        await session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == digest)
            .values(last_seen_at=seen, expires_at=datetime.now(UTC) + timedelta(hours=1))
        )
    else:
        await redis_or_none.hset(REDIS_PREFIX + digest, "last_seen_at", seen.isoformat())
        await redis_or_none.expire(REDIS_PREFIX + digest, 3600)

    assert (await client.get("/api/auth/me")).status_code == 200

    if redis_or_none is None:
        row = (
            await session.execute(
                select(StaffSession)
                .where(StaffSession.token_hash == digest)
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        last_seen, remaining = row.last_seen_at, row.expires_at - datetime.now(UTC)
    else:
        raw = await redis_or_none.hget(REDIS_PREFIX + digest, "last_seen_at")
        assert isinstance(raw, str)
        last_seen = datetime.fromisoformat(raw)
        remaining = timedelta(seconds=await redis_or_none.ttl(REDIS_PREFIX + digest))
    refreshed = last_seen > seen + timedelta(seconds=30)
    assert refreshed is (age_minutes >= 5)
    assert (remaining > timedelta(hours=11)) is refreshed


async def test_logging_in_again_ends_the_previous_session(
    client: httpx.AsyncClient, counselor: Counselor, admin: Counselor
) -> None:
    await log_in(client, counselor.email)
    first = client.cookies[SESSION_COOKIE]

    await log_in(client, admin.email)

    assert client.cookies[SESSION_COOKIE] != first
    assert (await client.get("/api/auth/me")).json()["id"] == admin.id
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, first)
    assert (await client.get("/api/auth/me")).status_code == 401

"""Server-side dashboard sessions and the cookie that names them.

The cookie carries a random token; the store keeps only its SHA-256, so neither a leaked table
nor a Redis dump logs anybody in. Sessions live in Redis when REDIS_URL is set and in PostgreSQL
(`staff_sessions`) otherwise; either way they outlive the process.

Expiry slides with use, but writing to the store on every request would turn every page view into
a write. A session is therefore refreshed only when its last refresh is older than
`refresh_interval`, which costs at most that much of the idle time.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fastapi import Response
from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.config import Settings
from counseldesk.staff.identity import IdentityCache
from counseldesk.staff.models import StaffSession

SESSION_COOKIE = "counseldesk_session"
REDIS_PREFIX = "counseldesk:staff_session:"
REDIS_INDEX_PREFIX = "counseldesk:staff_sessions_of:"
MAX_REFRESH_INTERVAL = timedelta(minutes=5)
USER_AGENT_MAX = 255
ADDRESS_MAX = 64


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SessionRecord:
    counselor_id: int
    last_seen_at: datetime


class SessionStore(Protocol):
    idle: timedelta

    async def create(
        self, counselor_id: int, *, user_agent: str | None, ip_address: str | None
    ) -> str:
        """Start a session and return its token (the cookie value)."""

    async def get(self, token: str) -> SessionRecord | None:
        """The live session for `token`, or None when unknown or idle for too long."""

    async def touch(self, token: str) -> None:
        """Mark the session as used now, restarting its idle time."""

    async def delete(self, token: str) -> None: ...

    async def delete_all(self, counselor_id: int, *, keep: str | None = None) -> None:
        """End every session of a counselor, except the one whose token is `keep`."""


def refresh_interval(idle: timedelta) -> timedelta:
    return min(MAX_REFRESH_INTERVAL, idle / 10)


def needs_refresh(record: SessionRecord, idle: timedelta, now: datetime | None = None) -> bool:
    return (now or utcnow()) - record.last_seen_at >= refresh_interval(idle)


class PgSessionStore:
    """Sessions as `staff_sessions` rows, written in the request's own transaction."""

    def __init__(self, session: AsyncSession, idle: timedelta) -> None:
        self.session = session
        self.idle = idle

    async def create(
        self, counselor_id: int, *, user_agent: str | None, ip_address: str | None
    ) -> str:
        token = new_token()
        now = utcnow()
        # Expired rows are never read again; clearing this counselor's on login keeps the table
        # the size of the live sessions without a separate sweeper (the index makes it cheap).
        await self.session.execute(
            delete(StaffSession)
            .where(StaffSession.counselor_id == counselor_id, StaffSession.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        self.session.add(
            StaffSession(
                token_hash=hash_token(token),
                counselor_id=counselor_id,
                last_seen_at=now,
                expires_at=now + self.idle,
                user_agent=_clip(user_agent, USER_AGENT_MAX),
                ip_address=_clip(ip_address, ADDRESS_MAX),
            )
        )
        await self.session.flush()
        return token

    async def get(self, token: str) -> SessionRecord | None:
        row = (
            await self.session.execute(
                select(StaffSession.counselor_id, StaffSession.last_seen_at).where(
                    StaffSession.token_hash == hash_token(token),
                    StaffSession.expires_at > utcnow(),
                )
            )
        ).one_or_none()
        return None if row is None else SessionRecord(row.counselor_id, row.last_seen_at)

    async def touch(self, token: str) -> None:
        now = utcnow()
        await self.session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == hash_token(token))
            .values(last_seen_at=now, expires_at=now + self.idle)
            .execution_options(synchronize_session=False)
        )

    async def delete(self, token: str) -> None:
        await self.session.execute(
            delete(StaffSession)
            .where(StaffSession.token_hash == hash_token(token))
            .execution_options(synchronize_session=False)
        )

    async def delete_all(self, counselor_id: int, *, keep: str | None = None) -> None:
        statement = delete(StaffSession).where(StaffSession.counselor_id == counselor_id)
        if keep is not None:
            statement = statement.where(StaffSession.token_hash != hash_token(keep))
        await self.session.execute(statement.execution_options(synchronize_session=False))


class RedisSessionStore:
    """Sessions as Redis hashes that expire on their own after the idle time.

    A set per counselor lists their session keys, so all of them can be ended at once (password
    change, deactivation). Entries of sessions that expired by themselves linger in that set
    until it is next rewritten; they point at nothing and cost a few bytes.
    """

    def __init__(self, redis: Redis, idle: timedelta) -> None:
        self.redis = redis
        self.idle = idle

    @property
    def _ttl(self) -> int:
        return max(1, int(self.idle.total_seconds()))

    async def create(
        self, counselor_id: int, *, user_agent: str | None, ip_address: str | None
    ) -> str:
        token = new_token()
        digest = hash_token(token)
        now = utcnow()
        index = f"{REDIS_INDEX_PREFIX}{counselor_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                REDIS_PREFIX + digest,
                mapping={
                    "counselor_id": counselor_id,
                    "created_at": now.isoformat(),
                    "last_seen_at": now.isoformat(),
                    "user_agent": _clip(user_agent, USER_AGENT_MAX) or "",
                    "ip_address": _clip(ip_address, ADDRESS_MAX) or "",
                },
            )
            pipe.expire(REDIS_PREFIX + digest, self._ttl)
            pipe.sadd(index, digest)
            pipe.expire(index, self._ttl)
            await pipe.execute()
        return token

    async def get(self, token: str) -> SessionRecord | None:
        values = await self.redis.hmget(
            REDIS_PREFIX + hash_token(token), ["counselor_id", "last_seen_at"]
        )
        counselor_id, last_seen_at = values
        if counselor_id is None or last_seen_at is None:
            return None
        return SessionRecord(int(counselor_id), datetime.fromisoformat(_text(last_seen_at)))

    async def touch(self, token: str) -> None:
        key = REDIS_PREFIX + hash_token(token)
        counselor_id = await self.redis.hget(key, "counselor_id")
        if counselor_id is None:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "last_seen_at", utcnow().isoformat())
            pipe.expire(key, self._ttl)
            pipe.expire(REDIS_INDEX_PREFIX + _text(counselor_id), self._ttl)
            await pipe.execute()

    async def delete(self, token: str) -> None:
        digest = hash_token(token)
        counselor_id = await self.redis.hget(REDIS_PREFIX + digest, "counselor_id")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(REDIS_PREFIX + digest)
            if counselor_id is not None:
                pipe.srem(REDIS_INDEX_PREFIX + _text(counselor_id), digest)
            await pipe.execute()

    async def delete_all(self, counselor_id: int, *, keep: str | None = None) -> None:
        index = f"{REDIS_INDEX_PREFIX}{counselor_id}"
        kept = hash_token(keep) if keep is not None else None
        digests = [_text(d) for d in await self.redis.smembers(index) if _text(d) != kept]
        if not digests:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(REDIS_PREFIX + d for d in digests))
            pipe.srem(index, *digests)
            await pipe.execute()


class ForgettingSessionStore:
    """A store that also forgets ended sessions in this process's identity cache, so logout,
    a password change or a deactivation takes effect on the very next request here."""

    def __init__(self, store: SessionStore, cache: IdentityCache) -> None:
        self.store = store
        self.cache = cache
        self.idle = store.idle

    async def create(
        self, counselor_id: int, *, user_agent: str | None, ip_address: str | None
    ) -> str:
        return await self.store.create(counselor_id, user_agent=user_agent, ip_address=ip_address)

    async def get(self, token: str) -> SessionRecord | None:
        return await self.store.get(token)

    async def touch(self, token: str) -> None:
        await self.store.touch(token)

    async def delete(self, token: str) -> None:
        self.cache.forget(hash_token(token))
        await self.store.delete(token)

    async def delete_all(self, counselor_id: int, *, keep: str | None = None) -> None:
        self.cache.forget_counselor(counselor_id, keep=None if keep is None else hash_token(keep))
        await self.store.delete_all(counselor_id, keep=keep)


def build_session_store(
    redis: Redis | None,
    session: AsyncSession,
    settings: Settings,
    cache: IdentityCache | None = None,
) -> SessionStore:
    idle = timedelta(hours=settings.session_idle_hours)
    store: SessionStore = (
        RedisSessionStore(redis, idle) if redis is not None else PgSessionStore(session, idle)
    )
    return store if cache is None else ForgettingSessionStore(store, cache)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    # No Max-Age: the server decides when a session ends (idle time, logout, deactivation),
    # and the browser forgets the cookie when it closes.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )


def _text(value: bytes | str) -> str:
    # The Runtime's client decodes responses; this keeps a bytes-mode client working too.
    return value.decode() if isinstance(value, bytes) else value


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]

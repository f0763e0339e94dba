"""What a running counseldesk process holds: settings, the database, Redis when configured, and
the realtime bus.

Built once by the CLI (or by a test) and handed to the web app, the bot and the worker, so all
three share one pool, one bus and one configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redis.asyncio import BlockingConnectionPool, Redis

from counseldesk.config import Settings
from counseldesk.db.embedded import EmbeddedPostgres
from counseldesk.db.engine import Database
from counseldesk.realtime.bus import EventBus, build_event_bus
from counseldesk.staff.identity import IdentityCache


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL when set; otherwise start (or join) the embedded PostgreSQL for the block."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.var_dir)
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


REDIS_POOL_SIZE = 100


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis | None = None
    # Live events: across instances through Redis when there is one, in-process otherwise.
    bus: EventBus = field(init=False)
    # Who each dashboard session belongs to, remembered for a few seconds (staff/identity.py).
    identities: IdentityCache = field(init=False)

    def __post_init__(self) -> None:
        self.identities = IdentityCache(self.settings.staff_identity_cache_seconds)
        # Here rather than in open(), so a Runtime built directly (tests) publishes too: every
        # committed unit of work hands its events to the bus.
        self.bus = build_event_bus(self.redis)
        self.db.event_sink = self.bus.publish

    @classmethod
    def open(cls, settings: Settings, url: str) -> Runtime:
        redis = None
        if settings.redis_url:
            # redis-py's default pool refuses the 101st concurrent command outright; a burst (a
            # deploy reconnecting thousands of dashboards, each checking its session) must wait
            # its turn instead of failing. One connection is the event reader's blocking read.
            pool = BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=REDIS_POOL_SIZE,
                timeout=settings.db_pool_timeout,
                decode_responses=True,
            )
            redis = Redis.from_pool(pool)
        return cls(settings=settings, db=Database.from_url(url, settings), redis=redis)

    async def close(self) -> None:
        await self.bus.close()
        await self.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()

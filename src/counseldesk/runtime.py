"""What a running counseldesk process holds: settings, the database, Redis when configured.

Built once by the CLI (or by a test) and handed to the web app, the bot and the worker, so all
three share one pool and one configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from counseldesk.config import Settings
from counseldesk.db.embedded import EmbeddedPostgres
from counseldesk.db.engine import Database


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


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis | None = None

    @classmethod
    def open(cls, settings: Settings, url: str) -> Runtime:
        redis = (
            Redis.from_url(settings.redis_url, decode_responses=True)
            if settings.redis_url
            else None
        )
        return cls(settings=settings, db=Database.from_url(url, settings), redis=redis)

    async def close(self) -> None:
        await self.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()

"""Turning the URLs people write into the ones SQLAlchemy's asyncpg dialect expects."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def to_asyncpg_url(url: str) -> URL:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"counseldesk needs PostgreSQL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg")

"""Alembic, driven from code: the migrations ship inside the package, so an installed counseldesk
can migrate its database without a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    # ConfigParser interpolation would read the '%' of URL-encoded socket paths.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


@cache
def head_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    return frozenset(script.get_heads())


async def current_revisions(conn: AsyncConnection) -> set[str]:
    """The revisions the database is at; none before its first migration. Read from alembic's
    table directly: a MigrationContext logs two INFO lines each time, and /readyz asks on every
    probe."""
    if await conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
        return set()
    return set((await conn.scalars(text("SELECT version_num FROM alembic_version"))).all())

"""Alembic, driven from code: the migrations ship inside the package, so an installed counseldesk
can migrate its database without a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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
    def _current(sync_conn: object) -> set[str]:
        ctx = MigrationContext.configure(sync_conn)  # type: ignore[arg-type]
        return set(ctx.get_current_heads())

    return await conn.run_sync(_current)

"""The `make run` path without DATABASE_URL: an embedded PostgreSQL, migrated, queried, stopped."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from counseldesk.db import migrate
from counseldesk.db.engine import Database
from counseldesk.runtime import database_url
from tests.conftest import make_settings


async def test_embedded_postgres_starts_migrates_and_stops(tmp_path: Path) -> None:
    settings = make_settings(var_dir=tmp_path / "var")
    with database_url(settings) as url:
        assert "host=" in url  # a Unix socket: no TCP port to collide with
        migrate.upgrade(url)
        db = Database.from_url(url, settings)
        async with db.unit_of_work() as session:
            version = await session.scalar(text("SHOW server_version_num"))
            tables = await session.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_name = 'students'")
            )
        await db.dispose()
        assert int(version or 0) >= 150000
        assert tables == 1
    # Stopped when the last user left; the data directory stays for the next start.
    assert not (tmp_path / "var" / "pgdata" / "postmaster.pid").exists()
    assert (tmp_path / "var" / "pgdata" / "PG_VERSION").is_file()

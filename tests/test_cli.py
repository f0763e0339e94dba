"""The command line as an operator uses it: a real process against a real database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from counseldesk.db import migrate
from counseldesk.db.engine import Database
from counseldesk.staff.models import Counselor, Role
from tests.conftest import make_settings, recreate_database
from tests.support.activity_days import counted_and_actual, vacuumed_and_analyzed


def _cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "counseldesk.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
async def cli_database(server_url: str) -> str:
    url = await recreate_database(server_url, "counseldesk_cli")
    migrate.upgrade(url)
    return url


async def _counselor(url: str, email: str) -> Counselor | None:
    db = Database.from_url(url, make_settings())
    try:
        async with db.unit_of_work() as session:
            return (
                await session.execute(select(Counselor).where(Counselor.email == email))
            ).scalar_one_or_none()
    finally:
        await db.dispose()


# First in the module: demo data loads only into a database without counselors.
def test_migrate_and_demo_data_are_repeatable(cli_database: str) -> None:
    assert _cli(cli_database, "migrate").returncode == 0
    first = _cli(cli_database, "demo-data")
    assert first.returncode == 0, first.stderr
    assert "Demo data loaded" in first.stdout
    second = _cli(cli_database, "demo-data")
    assert second.returncode == 0
    assert "not loaded again" in second.stdout


async def test_create_counselor_reads_the_password_from_stdin(cli_database: str) -> None:
    result = _cli(
        cli_database,
        "create-counselor",
        "--email",
        "Chief@Example.edu",
        "--name",
        "Head of Office",
        "--admin",
        stdin="a-long-password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Created admin chief@example.edu" in result.stdout
    counselor = await _counselor(cli_database, "chief@example.edu")
    assert counselor is not None and counselor.role is Role.ADMIN and counselor.is_active


async def test_create_counselor_refuses_a_duplicate_and_a_short_password(
    cli_database: str,
) -> None:
    args = ("create-counselor", "--email", "dup@example.edu", "--name", "Dup Licate")
    assert _cli(cli_database, *args, "--password", "first-password").returncode == 0
    again = _cli(cli_database, *args, "--password", "other-password")
    assert again.returncode == 1
    assert "already" in again.stderr.lower()
    short = _cli(
        cli_database,
        "create-counselor",
        "--email",
        "s@example.edu",
        "--name",
        "Sh Ort",
        "--password",
        "short",
    )
    assert short.returncode == 1
    assert "8" in short.stderr
    assert await _counselor(cli_database, "s@example.edu") is None


async def test_recount_inbox_days_repairs_counts_written_around(cli_database: str) -> None:
    # As after a load with triggers off: the counts say nothing of the tickets.
    engine = create_async_engine(cli_database)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM support_ticket_activity_days"))
        async with engine.connect() as conn:
            vacuums, analyzes = await vacuumed_and_analyzed(conn)
        result = _cli(cli_database, "recount-inbox-days")
        assert result.returncode == 0, result.stderr
        assert "Counted every ticket again." in result.stdout
        async with engine.connect() as conn:
            counted, actual = await counted_and_actual(conn)
        assert counted == actual != set()
        # Refilled from scratch, so vacuumed and analyzed at once: the deep page's statement
        # reads this table by index only, planned from its statistics.
        async with engine.connect() as conn:
            assert await vacuumed_and_analyzed(conn) == (vacuums + 1, analyzes + 1)
    finally:
        await engine.dispose()

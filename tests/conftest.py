"""Test fixtures: a real PostgreSQL with the schema built by the migrations, each test inside a
transaction that is rolled back; a real Redis where the code path uses Redis.

Where the servers come from:
- TEST_DATABASE_URL: a PostgreSQL server URL (any database on it; the suite creates and drops its
  own databases, counseldesk_*_t<pid>_<random>, and drops them). Unset: the embedded PostgreSQL
  under var/test.
- TEST_REDIS_URL: a Redis server; each run uses (and flushes) one of its databases 1-15. Unset:
  tests that need Redis are skipped (the in-process variants still run).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram import Bot
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from counseldesk.config import Settings
from counseldesk.db import migrate, paging
from counseldesk.db.embedded import EmbeddedPostgres
from counseldesk.db.engine import Database, create_engine
from counseldesk.db.urls import to_asyncpg_url
from counseldesk.runtime import Runtime
from counseldesk.staff.models import Counselor
from counseldesk.telegram.bot_factory import create_bot
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.web.app import create_app
from tests import query_plans

ROOT = Path(__file__).resolve().parent.parent
TEST_DB_NAME = "counseldesk_test"


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": None,
        "redis_url": None,
        "var_dir": ROOT / "var" / "test",
        "telegram_bot_token": None,
        "emulator_port": 0,
        "office_timezone": "Africa/Nairobi",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (where we may CREATE DATABASE)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    embedded = EmbeddedPostgres(ROOT / "var" / "test", database="postgres")
    yield embedded.start()
    embedded.stop()


# Databases are per test run: several runs may share one server at once (a developer's run
# beside another's) without dropping each other's data. Each run drops its own at the end.
RUN_SUFFIX = f"_t{os.getpid()}_{secrets.token_hex(3)}"
_created_databases: list[str] = []


async def _admin_execute(server: str, *statements: str) -> list[Any]:
    engine = create_engine(
        to_asyncpg_url(server).render_as_string(hide_password=False), make_settings()
    )
    results: list[Any] = []
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                result = await conn.execute(text(statement))
                results.append(result.fetchall() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return results


async def recreate_database(server: str, name: str) -> str:
    """A new, empty database for this run; dropped when the run ends."""
    full = name + RUN_SUFFIX
    await _admin_execute(
        server, f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)', f'CREATE DATABASE "{full}"'
    )
    _created_databases.append(full)
    return to_asyncpg_url(server).set(database=full).render_as_string(hide_password=False)


async def migrated_database(server: str, name: str, revision: str = "head") -> str:
    """A new database for this run with the migrations up to `revision` applied (the tests of
    one migration start from the revision before it)."""
    url = await recreate_database(server, name)
    migrate.upgrade(url, revision)
    return url


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL of `recreate_database` as plain asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session", autouse=True)
async def _drop_run_databases(server_url: str) -> AsyncIterator[None]:
    yield
    if _created_databases:
        await _admin_execute(
            server_url, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in _created_databases)
        )


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> str:
    """A fresh database whose schema was built by running every migration."""
    url = await recreate_database(server_url, TEST_DB_NAME)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, make_settings())
    query_plans.record_driver_queries(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[Database]:
    """A Database whose sessions all live inside one outer transaction, rolled back at the end.

    Commits inside the code under test become savepoint releases, so the code runs unchanged.
    """
    async with engine.connect() as conn:
        outer = await conn.begin()
        # SQLAlchemy sends BEGIN with the first statement. Send it now: readers sharing the
        # connection must find the test's transaction open, as they would a caller's.
        await conn.exec_driver_sql("SELECT 1")
        sessionmaker = async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        yield Database(engine, sessionmaker, read_bind=conn)
        await outer.rollback()


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    """A session for arranging and inspecting data inside the test's transaction."""
    async with db.sessionmaker() as session:
        yield session


def _redis_url() -> str:
    """TEST_REDIS_URL's server, on a database picked per run (1-15): concurrent runs on one
    machine would otherwise flush each other's keys mid-test."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{os.getpid() % 15 + 1}"


@asynccontextmanager
async def _fresh_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(_redis_url(), decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A real, empty Redis (skips the test when TEST_REDIS_URL is unset)."""
    async with _fresh_redis() as client:
        yield client


@pytest.fixture(params=["no-redis", "redis"])
async def redis_or_none(request: pytest.FixtureRequest) -> AsyncIterator[Redis | None]:
    """Runs a test twice: once without Redis (in-process/PostgreSQL paths), once with it."""
    if request.param == "no-redis":
        yield None
        return
    async with _fresh_redis() as client:
        yield client


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def runtime(db: Database, settings: Settings, redis_or_none: Redis | None) -> Runtime:
    """The process runtime, once without Redis and once with it (when TEST_REDIS_URL is set)."""
    return Runtime(settings=settings, db=db, redis=redis_or_none)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_estimates() -> None:
    """Row estimates are remembered per process for a minute, and a remembered one now decides
    whether a page counts at all: no test may inherit another's."""
    paging.forget_estimates()


# --- staff: password hashing, logged-in clients ------------------------------------------------


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the smallest parameters: production's take 0.1 s per hash, which adds up over
    hundreds of logins. Hashes made in tests are still real argon2id hashes."""
    from argon2 import PasswordHasher

    from counseldesk.staff import passwords

    monkeypatch.setattr(
        passwords, "hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
async def counselor(session: AsyncSession) -> Counselor:
    """An active counselor whose password is tests.factories.DEFAULT_PASSWORD."""
    from tests.factories import make_counselor

    return await make_counselor(session, full_name="Wanjiku Kamau")


@pytest.fixture
async def admin(session: AsyncSession) -> Counselor:
    """An active administrator whose password is tests.factories.DEFAULT_PASSWORD."""
    from tests.factories import make_admin

    return await make_admin(session, full_name="Amina Odhiambo")


async def log_in(client: httpx.AsyncClient, email: str, password: str | None = None) -> str:
    """Log `client` in through the JSON API; it then sends the CSRF header on every request.

    Returns the CSRF token. The client keeps the session cookie like a browser would.
    """
    from tests.factories import DEFAULT_PASSWORD

    response = await client.post(
        "/api/auth/login", json={"email": email, "password": password or DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token


@pytest.fixture
async def counselor_client(client: httpx.AsyncClient, counselor: Counselor) -> httpx.AsyncClient:
    """`client`, logged in as `counselor` (use either this or admin_client in a test)."""
    await log_in(client, counselor.email)
    return client


@pytest.fixture
async def admin_client(client: httpx.AsyncClient, admin: Counselor) -> httpx.AsyncClient:
    """`client`, logged in as `admin` (use either this or counselor_client in a test)."""
    await log_in(client, admin.email)
    return client


# --- the Telegram emulator and a bot talking to it ------------------------------------------


@pytest.fixture(scope="session")
async def emulator_server() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(port=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """One emulator for the session (starting one costs ~0.5 s), emptied for every test."""
    emulator_server.state.reset()
    return emulator_server


@pytest.fixture(scope="session")
async def bot(emulator_server: EmulatorServer) -> AsyncIterator[Bot]:
    """A Bot on the session's emulator (aiohttp's close pauses: once per session, not per test)."""
    bot = create_bot(make_settings(), api_url=emulator_server.url)
    yield bot
    await bot.session.close()

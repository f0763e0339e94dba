from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from counseldesk.db.migrate import current_revisions, head_revisions


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_migrations_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["current"] == body["checks"]["migrations"]["expected"]
    assert body["checks"]["redis"]["ok"] is True


async def test_readyz_logs_nothing_on_a_healthy_probe(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Probes come every few seconds; a healthy answer must not fill the server's log.
    caplog.set_level(logging.INFO)
    assert (await client.get("/readyz")).status_code == 200
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the client's
    assert [record.getMessage() for record in server_side] == []


async def test_a_database_never_migrated_is_at_no_revision(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("CREATE SCHEMA never_migrated"))
        await conn.execute(text("SET LOCAL search_path = never_migrated"))
        assert await current_revisions(conn) == set()
        await conn.execute(text("RESET search_path"))
        assert await current_revisions(conn) == set(head_revisions())
        await conn.rollback()

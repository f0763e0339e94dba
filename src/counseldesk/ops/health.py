"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from counseldesk.db.migrate import current_revisions, head_revisions
from counseldesk.web.deps import RuntimeDep

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready for traffic: database reachable with current migrations; Redis reachable if used."""
    checks: dict[str, Any] = {}
    ready = True

    try:
        async with asyncio.timeout(CHECK_TIMEOUT), runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await current_revisions(conn)
        expected = head_revisions()
        migrations_ok = current == expected
        checks["database"] = {"ok": True}
        checks["migrations"] = {
            "ok": migrations_ok,
            "current": sorted(current),
            "expected": sorted(expected),
        }
        ready = ready and migrations_ok
    except Exception as exc:  # any failure means "not ready", and the body says why
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        ready = False

    if runtime.redis is not None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await runtime.redis.ping()
            checks["redis"] = {"ok": True}
        except Exception as exc:
            checks["redis"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            ready = False
    else:
        checks["redis"] = {"ok": True, "configured": False}

    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )

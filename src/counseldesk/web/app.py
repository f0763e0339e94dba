"""The FastAPI application: dashboard pages, JSON API, Telegram webhook, health probes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from counseldesk.errors import CounseldeskError, TooManyRequests
from counseldesk.ops import health
from counseldesk.runtime import Runtime

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return (
        path.startswith("/api/")
        or path.startswith("/telegram/")
        or (
            "application/json" in request.headers.get("accept", "")
            and "text/html" not in request.headers.get("accept", "")
        )
    )


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="counseldesk",
        version="0.1.0",
        description="Counseling office desk: dashboard JSON API.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.runtime = runtime

    @app.exception_handler(CounseldeskError)
    async def _domain_error(request: Request, exc: CounseldeskError) -> Response:
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        if _wants_json(request):
            return JSONResponse(
                {"detail": exc.message}, status_code=exc.status_code, headers=headers
            )
        from counseldesk.web.templating import render_error

        return render_error(request, exc.status_code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    return app

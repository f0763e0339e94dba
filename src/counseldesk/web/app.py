"""The FastAPI application: dashboard pages, JSON API, Telegram webhook, health probes."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from counseldesk.appointments import api as appointments_api
from counseldesk.appointments import pages as appointments_pages
from counseldesk.errors import CounseldeskError, TooManyRequests
from counseldesk.ops import health
from counseldesk.runtime import Runtime
from counseldesk.simulator import api as simulator_api
from counseldesk.simulator import pages as simulator_pages
from counseldesk.staff import api as staff_api
from counseldesk.staff import pages as staff_pages
from counseldesk.staff.deps import LoginRequired
from counseldesk.staff.login_limiter import build_login_limiter
from counseldesk.support import api as support_api
from counseldesk.support import pages as support_pages
from counseldesk.telegram import webhook
from counseldesk.web import events, home
from counseldesk.web.csrf import CSRFCookieMiddleware, require_csrf_token

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/telegram/", "/simulator/api/")) or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="counseldesk",
        version="0.1.0",
        description="Counseling office desk: dashboard JSON API.\n\n"
        "Log in with `POST /api/auth/login`; the session lives in an HttpOnly cookie. Every "
        "POST, PUT, PATCH and DELETE must carry the `csrf_token` from the login response in an "
        "`X-CSRF-Token` header.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        # Every route, including ones added later, is CSRF-checked unless web/csrf.py exempts it.
        dependencies=[Depends(require_csrf_token)],
    )
    app.state.runtime = runtime
    app.state.login_limiter = build_login_limiter(
        runtime.redis, runtime.settings.login_max_failures, runtime.settings.login_window_seconds
    )
    app.add_middleware(CSRFCookieMiddleware, secure=runtime.settings.cookie_secure)

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

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
        return RedirectResponse(exc.login_url, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown paths and wrong methods: a page for browsers, the usual JSON for the API.
        headers = dict(exc.headers or {})
        if _wants_json(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=headers
            )
        from counseldesk.web.templating import render_error

        message = {404: "There is no page at this address."}.get(exc.status_code, str(exc.detail))
        return render_error(request, exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(staff_api.router)
    app.include_router(support_api.router)
    app.include_router(appointments_api.router)
    app.include_router(staff_pages.router)
    app.include_router(home.router)
    app.include_router(events.router)
    app.include_router(support_pages.router)
    app.include_router(support_pages.api_router)
    app.include_router(appointments_pages.router)
    app.include_router(simulator_api.router)
    app.include_router(simulator_pages.router)
    app.include_router(webhook.router)
    return app

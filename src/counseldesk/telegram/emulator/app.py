"""The emulator's ASGI application: Bot API routes plus the /sim/ control API on one state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from counseldesk.telegram.emulator import botapi, control
from counseldesk.telegram.emulator.errors import SimError, not_found
from counseldesk.telegram.emulator.state import EmulatorState
from counseldesk.telegram.emulator.webhook import WebhookDelivery


def create_app(state: EmulatorState | None = None) -> FastAPI:
    """The app; `app.state.emulator` is the EmulatorState, `app.state.webhook` its delivery."""
    state = state if state is not None else EmulatorState()
    webhook = WebhookDelivery(state)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.queue.webhook is not None:
            webhook.ensure_running()  # a restarted server on a state that has a webhook set
        yield
        await webhook.aclose()

    app = FastAPI(
        title="counseldesk Telegram Bot API emulator",
        description="A loopback stand-in for api.telegram.org plus a control API for tests and "
        "the dashboard's student simulator.",
        docs_url="/sim/docs",
        openapi_url="/sim/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.emulator = state
    app.state.webhook = webhook
    app.include_router(botapi.create_router(state, webhook.ensure_running))
    app.include_router(control.create_router(state))

    @app.exception_handler(SimError)
    async def sim_error(_: Request, exc: SimError) -> Response:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Paths that look like the Bot API answer the way Telegram does.
        path = request.url.path
        if exc.status_code == 404 and path.startswith(("/bot", "/file/bot")):
            return JSONResponse(not_found().payload(), status_code=404)
        return await http_exception_handler(request, exc)

    return app

"""The Bot API surface: /bot<token>/<method> and /file/bot<token>/<path>.

Every call goes through `call_method`: method lookup (case-insensitive, as on Telegram), injected
faults, flood control for sends, the handler, then one entry in the call log with the exact
answer. The HTTP status equals error_code, as on Telegram, which is what aiogram maps to its
exceptions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from counseldesk.telegram.emulator import methods_bot, methods_media, methods_messages
from counseldesk.telegram.emulator.context import CallContext, Handler
from counseldesk.telegram.emulator.errors import BotApiError, not_found, unauthorized
from counseldesk.telegram.emulator.params import Params, read_params
from counseldesk.telegram.emulator.state import EmulatorState

# Any token in Telegram's shape is accepted: the emulator serves whichever bot calls it.
TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")

_ALL: dict[str, Handler] = {
    **methods_bot.HANDLERS,
    **methods_messages.HANDLERS,
    **methods_media.HANDLERS,
}
METHODS: dict[str, tuple[str, Handler]] = {name.lower(): (name, h) for name, h in _ALL.items()}
METHOD_NAMES: frozenset[str] = frozenset(_ALL)
# The methods Telegram's flood control counts.
RATE_LIMITED = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendVoice"})


def canonical_method(name: str) -> str | None:
    found = METHODS.get(name.lower())
    return found[0] if found else None


def _chat_id_of(params: Params) -> int | None:
    try:
        return params.get_int("chat_id")
    except BotApiError:
        return None


async def call_method(
    state: EmulatorState,
    token: str,
    method: str,
    params: Params,
    *,
    on_webhook_set: Callable[[], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run one Bot API call: (HTTP status, Telegram's JSON answer). Never raises BotApiError."""
    found = METHODS.get(method.lower())
    name = found[0] if found else method
    try:
        if not TOKEN.fullmatch(token):
            raise unauthorized()
        if found is None:
            raise not_found()
        handler = found[1]
        state.note_token(token)
        chat_id = _chat_id_of(params)
        fault = state.faults.take(name, chat_id)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            error = fault.error()
            if error is not None:
                raise error
        if name in RATE_LIMITED:
            state.limiter.check(
                state.config.rate_limit_per_second,
                state.config.per_chat_rate_limit_per_second,
                chat_id,
            )
        ctx = CallContext(state=state, params=params, token=token)
        if on_webhook_set is not None:
            ctx.on_webhook_set = on_webhook_set
        result = await handler(ctx)
        status, body = 200, {"ok": True, "result": result}
        if ctx.description:
            body["description"] = ctx.description
    except BotApiError as exc:
        status, body = exc.error_code, exc.payload()
    state.calls.add(name, params.describe(), status, body)
    return status, body


def create_router(state: EmulatorState, on_webhook_set: Callable[[], None]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.api_route("/bot{token}/{method}", methods=["GET", "POST"])
    async def bot_method(request: Request, token: str, method: str) -> Response:
        try:
            params = await read_params(request)
        except BotApiError as exc:
            state.calls.add(canonical_method(method) or method, {}, exc.error_code, exc.payload())
            return JSONResponse(exc.payload(), status_code=exc.error_code)
        status, body = await call_method(
            state, token, method, params, on_webhook_set=on_webhook_set
        )
        return JSONResponse(body, status_code=status)

    @router.get("/file/bot{token}/{file_path:path}")
    async def download(token: str, file_path: str) -> Response:
        stored = state.files.by_path(file_path) if TOKEN.fullmatch(token) else None
        if stored is None:
            return JSONResponse(not_found().payload(), status_code=404)
        return Response(stored.content, media_type=stored.mime_type)

    return router

"""Cross-site request forgery protection: the double-submit cookie pattern.

Every browser gets a random token in an HttpOnly, SameSite=Strict cookie. Pages put the same token
in their forms (a hidden `csrf_token` field) and in `<meta name="csrf-token">` for scripts, which
send it back in the `X-CSRF-Token` header. A state-changing request passes only when what it sends
matches the cookie: another site can make the browser send the cookie, but cannot read it, so it
cannot send the matching value.

Two halves:
- `CSRFCookieMiddleware` makes sure each request has a token (`request.state.csrf_token`) and sets
  the cookie whenever the token is new or was rotated (at login).
- `require_csrf_token` is installed as an app-wide dependency, so every route, including routes
  added later, is protected without opting in. Exempt are only the JSON login (it demands
  `Content-Type: application/json`, which a cross-site form cannot send and cross-site `fetch` may
  send only after a CORS preflight that we never grant) and the Telegram webhook (Telegram proves
  itself with the secret header instead).
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from counseldesk.errors import PermissionDenied

CSRF_COOKIE = "counseldesk_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXEMPT = frozenset({("POST", "/api/auth/login"), ("POST", "/telegram/webhook")})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def _valid(token: str | None) -> str | None:
    return token if token is not None and _TOKEN_SHAPE.fullmatch(token) else None


def _cookie_token(scope: Scope) -> str | None:
    # Several Cookie headers are legal (HTTP/2 may split them); Starlette's parser is lenient
    # where http.cookies gives up on the whole header because of one odd cookie.
    joined = "; ".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie")
    return _valid(cookie_parser(joined).get(CSRF_COOKIE)) if joined else None


def csrf_token(request: Request) -> str:
    """The token pages must embed in forms and meta tags for this request."""
    token: str = request.state.csrf_token
    return token


def rotate_csrf_token(request: Request) -> str:
    """Give the browser a fresh token (at login), so one planted before login is worthless."""
    token = new_csrf_token()
    request.state.csrf_token = token
    return token


class CSRFCookieMiddleware:
    """Ensures a token exists and sends the cookie when the token changed during the request."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _cookie_token(scope)
        state = scope.setdefault("state", {})
        state["csrf_token"] = incoming or new_csrf_token()

        async def send_with_cookie(message: Message) -> None:
            current = state.get("csrf_token")
            if message["type"] == "http.response.start" and current and current != incoming:
                MutableHeaders(scope=message).append("set-cookie", self._cookie(current))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, token: str) -> str:
        # Strict: the browser never attaches it to a request another site starts. No Max-Age:
        # it lives as long as the browser session, like the login cookie.
        secure = "; Secure" if self.secure else ""
        return f"{CSRF_COOKIE}={token}; HttpOnly; Path=/; SameSite=Strict{secure}"


async def require_csrf_token(request: Request) -> None:
    """App-wide dependency: refuse a state-changing request whose token does not match."""
    if request.method in SAFE_METHODS or (request.method, request.url.path) in EXEMPT:
        return
    expected = _cookie_token(request.scope)
    if expected is None:
        raise PermissionDenied(
            "CSRF check failed: the CSRF cookie is missing. Reload the page and try again."
        )
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if sent is None and content_type.startswith(FORM_TYPES):
        # Starlette caches the parsed form, so the route reads the same one without re-parsing.
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent:
        raise PermissionDenied(
            f"CSRF check failed: send the token in the {CSRF_HEADER} header "
            f"or the {CSRF_FIELD} form field."
        )
    if not secrets.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "CSRF check failed: the token does not match. Reload the page and try again."
        )

"""Who is asking: the dependencies that turn the session cookie into a Counselor.

For the JSON API: `CurrentCounselor` (401 when not logged in) and `CurrentAdmin` (403 for other
roles). For dashboard pages: `PageCounselor` and `PageAdmin`, which send a visitor who is not
logged in to the login page and back afterwards, and show the 403 page for the wrong role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from counseldesk.config import Settings
from counseldesk.errors import NotAuthenticated, PermissionDenied
from counseldesk.staff.login_limiter import LoginLimiter
from counseldesk.staff.models import Counselor, Role
from counseldesk.staff.sessions import (
    SESSION_COOKIE,
    SessionStore,
    build_session_store,
    clear_session_cookie,
    needs_refresh,
    set_session_cookie,
)
from counseldesk.web.csrf import rotate_csrf_token
from counseldesk.web.deps import RuntimeDep, SessionDep

NOT_LOGGED_IN = "Not logged in."
ADMINS_ONLY = "Only administrators may do this."


@dataclass(frozen=True)
class StaffIdentity:
    """Who is logged in, as plain values: templates (the layout, error pages rendered after the
    request's transaction rolled back) read this, never the ORM object, which may be expired."""

    id: int
    email: str
    full_name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def of(cls, counselor: Counselor) -> StaffIdentity:
        return cls(counselor.id, counselor.email, counselor.full_name, counselor.role)


def _remember(request: Request, counselor: Counselor | None) -> None:
    request.state.staff = None if counselor is None else StaffIdentity.of(counselor)


class LoginRequired(NotAuthenticated):
    """A page needs a login; the app answers with a redirect to /login?next=..."""

    def __init__(self, next_url: str | None) -> None:
        super().__init__(NOT_LOGGED_IN)
        self.next_url = next_url

    @property
    def login_url(self) -> str:
        if not self.next_url or self.next_url == "/":
            return "/login"
        return "/login?next=" + quote(self.next_url, safe="/")


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this site, else "/": a login page must not become a
    springboard to other sites (open redirect), so "//evil.example" and "https://..." lose."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x20 for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def client_address(request: Request) -> str:
    # Behind a proxy, uvicorn's --proxy-headers puts the real client here.
    return request.client.host if request.client else "unknown"


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


async def get_session_store(runtime: RuntimeDep, session: SessionDep) -> SessionStore:
    return build_session_store(runtime.redis, session, runtime.settings)


SessionStoreDep = Annotated[SessionStore, Depends(get_session_store)]


async def get_login_limiter(request: Request) -> LoginLimiter:
    # One per app (built in create_app), so the in-process variant remembers across requests.
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]


async def get_optional_counselor(
    request: Request, store: SessionStoreDep, session: SessionDep
) -> Counselor | None:
    """The logged-in, active counselor, or None. Templates see it as request.state.staff."""
    _remember(request, None)
    token = session_token(request)
    if token is None:
        return None
    record = await store.get(token)
    if record is None:
        return None
    counselor = await session.get(Counselor, record.counselor_id)
    # Checked on every request, so deactivating an account ends its sessions at once.
    if counselor is None or not counselor.is_active:
        return None
    if needs_refresh(record, store.idle):
        await store.touch(token)
    _remember(request, counselor)
    return counselor


OptionalCounselor = Annotated[Counselor | None, Depends(get_optional_counselor)]


async def require_counselor(counselor: OptionalCounselor) -> Counselor:
    if counselor is None:
        raise NotAuthenticated(NOT_LOGGED_IN)
    return counselor


CurrentCounselor = Annotated[Counselor, Depends(require_counselor)]


async def require_admin(counselor: CurrentCounselor) -> Counselor:
    if not counselor.is_admin:
        raise PermissionDenied(ADMINS_ONLY)
    return counselor


CurrentAdmin = Annotated[Counselor, Depends(require_admin)]


async def require_page_counselor(request: Request, counselor: OptionalCounselor) -> Counselor:
    if counselor is None:
        # Only a GET can be repeated after login; a form POST goes back to the home page.
        back = request.url.path
        if request.url.query:
            back += "?" + request.url.query
        raise LoginRequired(back if request.method in ("GET", "HEAD") else None)
    return counselor


PageCounselor = Annotated[Counselor, Depends(require_page_counselor)]


async def require_page_admin(counselor: PageCounselor) -> Counselor:
    if not counselor.is_admin:
        raise PermissionDenied(ADMINS_ONLY)
    return counselor


PageAdmin = Annotated[Counselor, Depends(require_page_admin)]


async def start_session(
    request: Request,
    response: Response,
    store: SessionStore,
    counselor: Counselor,
    settings: Settings,
) -> str:
    """Log `counselor` in on this browser; returns the new CSRF token.

    The CSRF token is replaced too, so a token planted in the browser before login is useless,
    and a session this browser still had (someone else's, perhaps) ends.
    """
    previous = session_token(request)
    if previous is not None:
        await store.delete(previous)
    token = await store.create(
        counselor.id,
        user_agent=request.headers.get("user-agent"),
        ip_address=client_address(request),
    )
    set_session_cookie(response, token, settings)
    _remember(request, counselor)
    return rotate_csrf_token(request)


async def end_session(
    request: Request, response: Response, store: SessionStore, settings: Settings
) -> None:
    token = session_token(request)
    if token is not None:
        await store.delete(token)
    clear_session_cookie(response, settings)
    _remember(request, None)

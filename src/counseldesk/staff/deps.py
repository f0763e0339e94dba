"""Who is asking: the dependencies that turn the session cookie into a Counselor.

For the JSON API: `CurrentStaff` (401 when not logged in) and `StaffAdmin` (403 for other roles)
give who is asking as plain values, from the identity cache when it remembers the session —
what read routes need, with no database work of their own. `CurrentCounselor` and `CurrentAdmin`
load the counselor's row into the route's session and check it is still active — what routes
that change something need (and they refuse an account deactivated by another process, whatever
that process's cache still holds). For dashboard pages: `PageCounselor` and `PageAdmin`, which
send a visitor who is not logged in to the login page and back afterwards, and show the 403 page
for the wrong role.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from counseldesk.config import Settings
from counseldesk.errors import NotAuthenticated, PermissionDenied
from counseldesk.runtime import Runtime
from counseldesk.staff.identity import StaffIdentity
from counseldesk.staff.login_limiter import LoginLimiter
from counseldesk.staff.models import Counselor
from counseldesk.staff.sessions import (
    SESSION_COOKIE,
    SessionStore,
    build_session_store,
    clear_session_cookie,
    hash_token,
    needs_refresh,
    refresh_interval,
    set_session_cookie,
    utcnow,
)
from counseldesk.web.csrf import rotate_csrf_token
from counseldesk.web.deps import RuntimeDep, SessionDep

NOT_LOGGED_IN = "Not logged in."
ADMINS_ONLY = "Only administrators may do this."


def _remember(request: Request, staff: StaffIdentity | None) -> None:
    # Templates (the layout's name and menu) read it from here.
    request.state.staff = staff


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
    return build_session_store(runtime.redis, session, runtime.settings, runtime.identities)


SessionStoreDep = Annotated[SessionStore, Depends(get_session_store)]


async def get_login_limiter(request: Request) -> LoginLimiter:
    # One per app (built in create_app), so the in-process variant remembers across requests.
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]


async def get_staff(request: Request, runtime: RuntimeDep) -> StaffIdentity | None:
    """Who is logged in (an active counselor), or None."""
    _remember(request, None)
    token = session_token(request)
    if token is None:
        return None
    digest = hash_token(token)
    staff = runtime.identities.get(digest)
    if staff is None:
        staff = await _look_up(runtime, token, digest)
    _remember(request, staff)
    return staff


async def _look_up(runtime: Runtime, token: str, digest: str) -> StaffIdentity | None:
    # A unit of work of its own, over before the route runs: the route's session is not involved
    # (read routes may not have one), and an event stream or long poll holds no connection.
    async with runtime.db.unit_of_work() as session:
        store = build_session_store(runtime.redis, session, runtime.settings)
        record = await store.get(token)
        if record is None:
            return None
        counselor = await session.get(Counselor, record.counselor_id)
        # Deactivating an account ends its sessions; this catches one deactivated by hand.
        if counselor is None or not counselor.is_active:
            return None
        last_seen = record.last_seen_at
        if needs_refresh(record, store.idle):
            await store.touch(token)
            last_seen = utcnow()
        staff = StaffIdentity.of(counselor)
    # Never remembered past the session's next sliding refresh, which needs the store.
    due = last_seen + refresh_interval(store.idle) - utcnow()
    runtime.identities.put(digest, staff, at_most=due.total_seconds())
    return staff


OptionalStaff = Annotated[StaffIdentity | None, Depends(get_staff)]


async def require_staff(staff: OptionalStaff) -> StaffIdentity:
    if staff is None:
        raise NotAuthenticated(NOT_LOGGED_IN)
    return staff


CurrentStaff = Annotated[StaffIdentity, Depends(require_staff)]


async def require_staff_admin(staff: CurrentStaff) -> StaffIdentity:
    if not staff.is_admin:
        raise PermissionDenied(ADMINS_ONLY)
    return staff


StaffAdmin = Annotated[StaffIdentity, Depends(require_staff_admin)]


async def get_optional_counselor(
    request: Request, staff: OptionalStaff, session: SessionDep, runtime: RuntimeDep
) -> Counselor | None:
    """The logged-in counselor's row in the route's session, or None. Read from the database,
    not the identity cache, so an account deactivated elsewhere is refused here at once — and
    from then on by read routes too."""
    if staff is None:
        return None
    counselor = await session.get(Counselor, staff.id)
    if counselor is None or not counselor.is_active:
        runtime.identities.forget_counselor(staff.id)
        _remember(request, None)
        return None
    fresh = StaffIdentity.of(counselor)
    if fresh != staff:  # a new name, say: pages show the row's, the cache forgets the old one
        runtime.identities.forget_counselor(staff.id)
        _remember(request, fresh)
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
    _remember(request, StaffIdentity.of(counselor))
    return rotate_csrf_token(request)


async def end_session(
    request: Request, response: Response, store: SessionStore, settings: Settings
) -> None:
    token = session_token(request)
    if token is not None:
        await store.delete(token)
    clear_session_cookie(response, settings)
    _remember(request, None)

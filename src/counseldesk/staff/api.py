"""Staff JSON API: login, logout, the current counselor, password change, the counselor list."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from counseldesk.staff import service
from counseldesk.staff.deps import (
    CurrentAdmin,
    CurrentCounselor,
    CurrentStaff,
    LoginLimiterDep,
    SessionStoreDep,
    client_address,
    end_session,
    session_token,
    start_session,
)
from counseldesk.staff.schemas import (
    CounselorOut,
    LoginIn,
    LoginOut,
    PasswordChangeIn,
)
from counseldesk.web.deps import SessionDep, SettingsDep
from counseldesk.web.openapi import error_response

router = APIRouter(prefix="/api")


NOT_LOGGED_IN = error_response(401, "Not logged in, or the session ended.", "Not logged in.")
CSRF_REFUSED = error_response(
    403,
    "The CSRF token is missing or wrong.",
    "CSRF check failed: the token does not match. Reload the page and try again.",
)


@router.post(
    "/auth/login",
    tags=["auth"],
    responses={
        **error_response(
            401, "Wrong email or password, or a deactivated account.", "Invalid email or password."
        ),
        **error_response(
            429,
            "Too many failed logins for this email from this address; see Retry-After.",
            "Too many failed attempts. Try again in 15 minutes.",
        ),
    },
)
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    session: SessionDep,
    store: SessionStoreDep,
    limiter: LoginLimiterDep,
    settings: SettingsDep,
) -> LoginOut:
    """Log in and receive the session cookie (`counseldesk_session`).

    Needs `Content-Type: application/json`: that is what makes this one unsafe request safe
    without a CSRF token (a cross-site form cannot send it). Keep the returned `csrf_token`.
    """
    counselor = await service.log_in(
        session,
        limiter,
        email=body.email,
        password=body.password,
        client_address=client_address(request),
    )
    csrf_token = await start_session(request, response, store, counselor, settings)
    return LoginOut(counselor=CounselorOut.model_validate(counselor), csrf_token=csrf_token)


@router.get("/auth/me", tags=["auth"], responses=NOT_LOGGED_IN)
async def me(staff: CurrentStaff) -> CounselorOut:
    """The logged-in counselor."""
    # Only an active account is logged in.
    return CounselorOut(
        id=staff.id, email=staff.email, full_name=staff.full_name, role=staff.role, is_active=True
    )


@router.post("/auth/logout", tags=["auth"], status_code=204, responses=CSRF_REFUSED)
async def logout(
    request: Request, response: Response, store: SessionStoreDep, settings: SettingsDep
) -> None:
    """End the session and clear its cookie (also fine when already logged out)."""
    await end_session(request, response, store, settings)


@router.post(
    "/auth/password",
    tags=["auth"],
    status_code=204,
    responses={
        **NOT_LOGGED_IN,
        **CSRF_REFUSED,
        **error_response(
            422,
            "The current password is wrong, or the new one is too short.",
            "Your current password is not correct.",
        ),
        **error_response(429, "Too many wrong current passwords.", "Too many failed attempts."),
    },
)
async def change_password(
    body: PasswordChangeIn,
    request: Request,
    counselor: CurrentCounselor,
    session: SessionDep,
    store: SessionStoreDep,
    limiter: LoginLimiterDep,
) -> None:
    """Change your password. Your other sessions end; this one continues."""
    await service.change_password(
        session,
        counselor,
        body.current_password,
        body.new_password,
        limiter=limiter,
        sessions=store,
        keep_session=session_token(request),
    )


@router.get(
    "/staff/counselors",
    tags=["staff"],
    responses={
        **NOT_LOGGED_IN,
        **error_response(403, "Not an administrator.", "Only administrators may do this."),
    },
)
async def list_counselors(_admin: CurrentAdmin, session: SessionDep) -> list[CounselorOut]:
    """Every counselor account, active ones first (administrators only)."""
    return [CounselorOut.model_validate(c) for c in await service.list_counselors(session)]

"""Dashboard pages of the staff feature: login, logout, profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.content.service import get_office_settings
from counseldesk.errors import InvalidInput, NotAuthenticated, TooManyRequests
from counseldesk.staff import service
from counseldesk.staff.deps import (
    LoginLimiterDep,
    OptionalCounselor,
    PageCounselor,
    SessionStoreDep,
    client_address,
    end_session,
    safe_next,
    session_token,
    start_session,
)
from counseldesk.staff.models import Counselor
from counseldesk.web.deps import SessionDep, SettingsDep
from counseldesk.web.templating import flash, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


def _retry_headers(exc: Exception) -> dict[str, str] | None:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None


async def _login_form(
    request: Request,
    session: AsyncSession,
    *,
    next_url: str,
    email: str = "",
    error: TooManyRequests | NotAuthenticated | None = None,
) -> Response:
    office = await get_office_settings(session)
    context = {"next_url": next_url, "email": email, "office_name": office.office_name}
    if error is None:
        return render(request, "login.html", context)
    return render(
        request,
        "login.html",
        {**context, "error": error.message},
        status_code=error.status_code,
        headers=_retry_headers(error),
    )


@router.get("/login")
async def login_page(
    request: Request,
    counselor: OptionalCounselor,
    session: SessionDep,
    next_url: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    target = safe_next(next_url)
    if counselor is not None:
        return RedirectResponse(target, status_code=303)
    return await _login_form(request, session, next_url=target)


@router.post("/login")
async def login_submit(
    request: Request,
    session: SessionDep,
    store: SessionStoreDep,
    limiter: LoginLimiterDep,
    settings: SettingsDep,
    email: FormStr = "",
    password: FormStr = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    target = safe_next(next_url)
    try:
        counselor = await service.log_in(
            session,
            limiter,
            email=email,
            password=password,
            client_address=client_address(request),
        )
    except (NotAuthenticated, TooManyRequests) as exc:
        return await _login_form(request, session, next_url=target, email=email, error=exc)
    response = RedirectResponse(target, status_code=303)
    await start_session(request, response, store, counselor, settings)
    return response


@router.post("/logout")
async def logout(request: Request, store: SessionStoreDep, settings: SettingsDep) -> Response:
    response = RedirectResponse("/login", status_code=303)
    await end_session(request, response, store, settings)
    flash(response, "You are signed out.", "info")
    return response


def _profile(
    request: Request,
    counselor: Counselor,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    context.setdefault("full_name", counselor.full_name)
    return render(
        request,
        "profile.html",
        {"counselor": counselor, **context},
        status_code=status_code,
        headers=headers,
    )


@router.get("/profile")
async def profile_page(request: Request, counselor: PageCounselor) -> Response:
    return _profile(request, counselor)


@router.post("/profile")
async def profile_submit(
    request: Request,
    counselor: PageCounselor,
    session: SessionDep,
    full_name: FormStr = "",
) -> Response:
    try:
        await service.update_profile(session, counselor, full_name=full_name)
    except InvalidInput as exc:
        return _profile(
            request, counselor, status_code=422, name_error=exc.message, full_name=full_name
        )
    response = RedirectResponse("/profile", status_code=303)
    flash(response, "Your name was saved.")
    return response


@router.post("/profile/password")
async def password_submit(
    request: Request,
    counselor: PageCounselor,
    session: SessionDep,
    store: SessionStoreDep,
    limiter: LoginLimiterDep,
    current_password: FormStr = "",
    new_password: FormStr = "",
    repeat_password: FormStr = "",
) -> Response:
    try:
        if new_password != repeat_password:
            raise InvalidInput("The new password and its repetition differ.")
        await service.change_password(
            session,
            counselor,
            current_password,
            new_password,
            limiter=limiter,
            sessions=store,
            keep_session=session_token(request),
        )
    except (InvalidInput, TooManyRequests) as exc:
        return _profile(
            request,
            counselor,
            status_code=exc.status_code,
            headers=_retry_headers(exc),
            password_error=exc.message,
        )
    response = RedirectResponse("/profile", status_code=303)
    flash(response, "Your password was changed. Your other sessions were signed out.")
    return response

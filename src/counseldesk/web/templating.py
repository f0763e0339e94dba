"""Jinja2 environment shared by every feature's dashboard pages.

Every template rendered through `render()` gets, besides its own context:
- `current_counselor`: who is logged in (a StaffIdentity: id, email, full_name, role,
  is_admin), or None; set by the staff dependencies;
- `csrf_token`, and `csrf_field()` which writes the hidden form input carrying it;
- `nav_links`: the entries of NAV_LINKS this counselor may see;
- `flash_messages`: messages left by `flash()` on the redirect that led here;
- `current_path`: the request path (to mark the current navigation entry).
Pages extend "base.html" (see the block list at its top).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
FLASH_COOKIE = "counseldesk_flash"
FLASH_MAX_CHARS = 300

FlashLevel = Literal["success", "info", "error"]


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    admin_only: bool = False

    def is_current(self, path: str) -> bool:
        if self.href == "/":
            return path == "/"
        return path == self.href or path.startswith(self.href + "/")


# The dashboard's navigation, in display order. A new page adds its entry here; admin_only links
# appear under "Administration" and only for administrators (the page itself must still use
# PageAdmin: hiding a link is not access control).
NAV_LINKS: tuple[NavLink, ...] = (
    NavLink("Home", "/"),
    NavLink("Support inbox", "/support"),
    NavLink("Appointments", "/appointments"),
    NavLink("Student simulator", "/simulator", admin_only=True),
)


@dataclass(frozen=True)
class FlashMessage:
    level: FlashLevel
    text: str


def flash(response: Response, text: str, level: FlashLevel = "success") -> None:
    """Show `text` on the next page rendered (post-redirect-get: call it on the redirect)."""
    payload = json.dumps([level, text[:FLASH_MAX_CHARS]]).encode()
    value = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="lax", path="/")


def _read_flash(request: Request) -> list[FlashMessage]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        level, text = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError, binascii.Error):
        return []
    if level not in ("success", "info", "error") or not isinstance(text, str):
        return []
    return [FlashMessage(level, text[:FLASH_MAX_CHARS])]


def _layout_context(request: Request) -> dict[str, Any]:
    counselor = getattr(request.state, "staff", None)
    links = [
        link
        for link in NAV_LINKS
        if counselor is not None and (counselor.is_admin or not link.admin_only)
    ]
    return {
        "current_counselor": counselor,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "nav_links": [link for link in links if not link.admin_only],
        "admin_nav_links": [link for link in links if link.admin_only],
        "current_path": request.url.path,
        "flash_messages": _read_flash(request),
    }


@pass_context
def _csrf_field(context: Context) -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(
        context.get("csrf_token", "")
    )


def _thousands(value: int | float) -> str:
    return f"{value:,.0f}"


templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_layout_context])
templates.env.globals["csrf_field"] = _csrf_field
templates.env.filters["thousands"] = _thousands


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, name, context or {}, status_code=status_code, headers=headers
    )
    if FLASH_COOKIE in request.cookies:  # shown now, so not again
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def render_error(
    request: Request, status_code: int, message: str, *, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status_code": status_code, "message": message},
        status_code=status_code,
        headers=headers,
    )

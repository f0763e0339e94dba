"""Dashboard pages: login form, logout, redirects, profile, home, error pages, navigation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.runtime import Runtime
from counseldesk.staff.deps import PageAdmin
from counseldesk.staff.models import Counselor
from counseldesk.staff.sessions import SESSION_COOKIE
from counseldesk.web.app import create_app
from counseldesk.web.csrf import CSRF_COOKIE
from counseldesk.web.home import first_name, start_of_week
from tests.factories import (
    DEFAULT_PASSWORD,
    make_counselor,
    make_student,
    make_user_session,
)


def _csrf(client: httpx.AsyncClient) -> str:
    return client.cookies[CSRF_COOKIE]


async def _form_login(
    client: httpx.AsyncClient, email: str, password: str, next_url: str | None = None
) -> httpx.Response:
    await client.get("/login")
    data = {"email": email, "password": password, "csrf_token": _csrf(client)}
    if next_url is not None:
        data["next"] = next_url
    return await client.post("/login", data=data)


@pytest.mark.parametrize(
    ("path", "login_url"),
    [
        ("/", "/login"),
        ("/profile", "/login?next=/profile"),
        ("/profile?tab=password", "/login?next=/profile%3Ftab%3Dpassword"),
    ],
)
async def test_pages_send_visitors_to_the_login_page(
    client: httpx.AsyncClient, path: str, login_url: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == login_url


async def test_login_form_logs_in_and_goes_to_next(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    before = (await client.get("/login?next=/profile")).text
    assert 'name="next" value="/profile"' in before

    response = await _form_login(client, counselor.email, DEFAULT_PASSWORD, "/profile")

    assert response.status_code == 303
    assert response.headers["location"] == "/profile"
    assert SESSION_COOKIE in client.cookies
    page = await client.get("/profile")
    assert page.status_code == 200
    assert "Wanjiku Kamau" in page.text

    # Logged in, /login goes straight on.
    again = await client.get("/login?next=/profile")
    assert again.status_code == 303
    assert again.headers["location"] == "/profile"


@pytest.mark.parametrize(
    "evil", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
async def test_login_never_redirects_off_site(
    client: httpx.AsyncClient, counselor: Counselor, evil: str
) -> None:
    response = await _form_login(client, counselor.email, DEFAULT_PASSWORD, evil)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_failed_form_login_shows_the_error_and_keeps_the_email(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    response = await _form_login(client, counselor.email, "wrong password")

    assert response.status_code == 401
    assert "Invalid email or password." in response.text
    assert f'value="{counselor.email}"' in response.text
    assert SESSION_COOKIE not in client.cookies


async def test_form_login_is_rate_limited_too(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    for _ in range(5):
        await _form_login(client, counselor.email, "wrong password")

    response = await _form_login(client, counselor.email, DEFAULT_PASSWORD)

    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert "Too many failed attempts" in response.text


async def test_logout_form(counselor_client: httpx.AsyncClient) -> None:
    client = counselor_client
    response = await client.post("/logout", data={"csrf_token": _csrf(client)})

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    login_page = await client.get("/login")
    assert "You are signed out." in login_page.text
    assert (await client.get("/")).status_code == 303
    # The flash message shows once.
    assert "You are signed out." not in (await client.get("/login")).text


async def test_profile_update(counselor_client: httpx.AsyncClient, session: AsyncSession) -> None:
    client = counselor_client
    response = await client.post("/profile", data={"full_name": "  Wanjiku   Njeri  "})

    assert response.status_code == 303
    page = await client.get("/profile")
    assert "Your name was saved." in page.text
    assert 'value="Wanjiku Njeri"' in page.text

    empty = await client.post("/profile", data={"full_name": "   "})
    assert empty.status_code == 422
    assert "The full name must not be empty." in empty.text


async def test_profile_password_change(counselor_client: httpx.AsyncClient) -> None:
    client = counselor_client

    async def change(current: str, new: str, repeat: str) -> httpx.Response:
        return await client.post(
            "/profile/password",
            data={"current_password": current, "new_password": new, "repeat_password": repeat},
        )

    mismatch = await change(DEFAULT_PASSWORD, "a new password", "a new passw0rd")
    assert mismatch.status_code == 422
    assert "differ" in mismatch.text

    wrong = await change("not it", "a new password", "a new password")
    assert wrong.status_code == 422
    assert "Your current password is not correct." in wrong.text

    short = await change(DEFAULT_PASSWORD, "short", "short")
    assert short.status_code == 422
    assert "at least 8 characters" in short.text

    done = await change(DEFAULT_PASSWORD, "a new password", "a new password")
    assert done.status_code == 303
    assert "Your password was changed." in (await client.get("/profile")).text


async def test_home_shows_real_numbers(
    counselor_client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    now = datetime.now(UTC)
    week_start = start_of_week(now, runtime.settings.tz)
    await make_student(session, created_at=week_start - timedelta(days=3))
    for _ in range(3):
        await make_student(session)
    await make_user_session(session, last_seen_at=now - timedelta(hours=2))
    await make_user_session(session, last_seen_at=now - timedelta(hours=30))
    await make_counselor(session, is_active=False)

    page = await counselor_client.get("/")

    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert 'Registered students</p> <p class="stat-value">4</p>' in text
    assert 'New this week</p> <p class="stat-value">3</p>' in text
    assert 'Active on Telegram</p> <p class="stat-value">1</p>' in text
    assert 'Counselors</p> <p class="stat-value">1</p>' in text
    assert "Wanjiku" in text


async def test_navigation_shows_admin_links_to_admins_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    counselor = await make_counselor(session)
    admin = await make_counselor(session, role=counselor.role.ADMIN)

    await _form_login(client, counselor.email, DEFAULT_PASSWORD)
    counselor_home = (await client.get("/")).text
    await client.post("/logout", data={"csrf_token": _csrf(client)})
    await _form_login(client, admin.email, DEFAULT_PASSWORD)
    admin_home = (await client.get("/")).text

    assert 'href="/simulator"' not in counselor_home
    assert 'href="/simulator"' in admin_home
    assert 'href="/" aria-current="page"' in admin_home


async def test_admin_pages_show_403_to_counselors(
    runtime: Runtime, counselor: Counselor, admin: Counselor
) -> None:
    app = create_app(runtime)

    @app.get("/test-only/admin-page")
    async def admin_page(_admin: PageAdmin) -> dict[str, bool]:
        return {"ok": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        anonymous = await client.get("/test-only/admin-page")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=/test-only/admin-page"

        await _form_login(client, counselor.email, DEFAULT_PASSWORD)
        refused = await client.get("/test-only/admin-page")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "Only administrators may do this." in refused.text

        await client.post("/logout", data={"csrf_token": _csrf(client)})
        await _form_login(client, admin.email, DEFAULT_PASSWORD)
        assert (await client.get("/test-only/admin-page")).status_code == 200


async def test_deactivated_counselor_is_sent_to_login(
    counselor_client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    counselor.is_active = False
    await session.flush()
    response = await counselor_client.get("/profile")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_unknown_pages_are_html_and_unknown_api_paths_json(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/no-such-page")
    api = await client.get("/api/no-such-thing")

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text
    assert api.status_code == 404
    assert api.json() == {"detail": "Not Found"}


async def test_openapi_describes_the_auth_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    login = schema["paths"]["/api/auth/login"]["post"]
    assert login["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LoginOut"
    }
    assert "401" in login["responses"]
    assert "429" in login["responses"]
    assert {"/api/auth/me", "/api/auth/logout", "/api/auth/password"} <= set(schema["paths"])
    assert "/login" not in schema["paths"]


@pytest.mark.parametrize(
    ("full_name", "expected"),
    [
        ("Dr. Amina Otieno", "Amina"),
        ("Prof Brian Kiptoo", "Brian"),
        ("Grace Wanjiru", "Grace"),
        ("Dr.", "Dr."),
        ("", ""),
    ],
)
def test_the_greeting_uses_the_first_name_not_a_title(full_name: str, expected: str) -> None:
    assert first_name(full_name) == expected

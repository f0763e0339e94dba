"""CSRF: every state-changing request must echo the token of the HttpOnly cookie."""

from __future__ import annotations

import re

import httpx
import pytest

from counseldesk.runtime import Runtime
from counseldesk.staff.models import Counselor
from counseldesk.web.app import create_app
from counseldesk.web.csrf import CSRF_COOKIE
from tests.conftest import log_in
from tests.factories import DEFAULT_PASSWORD

META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


async def test_pages_get_a_strict_httponly_cookie_and_the_same_token_in_meta_and_forms(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/login")

    assert response.status_code == 200
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(CSRF_COOKIE + "=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    token = client.cookies[CSRF_COOKIE]
    meta = META.search(response.text)
    field = FIELD.search(response.text)
    assert meta is not None
    assert field is not None
    assert meta.group(1) == field.group(1) == token

    # The cookie is set once, not on every response.
    again = await client.get("/login")
    assert CSRF_COOKIE not in again.headers.get("set-cookie", "")
    assert FIELD.search(again.text).group(1) == token  # type: ignore[union-attr]


async def test_form_post_without_or_with_a_wrong_token_is_refused(
    counselor_client: httpx.AsyncClient,
) -> None:
    client = counselor_client
    del client.headers["X-CSRF-Token"]  # behave like a plain HTML form

    missing = await client.post("/profile", data={"full_name": "New Name"})
    wrong = await client.post("/profile", data={"full_name": "New Name", "csrf_token": "x" * 43})

    for response in (missing, wrong):
        assert response.status_code == 403
        assert "CSRF check failed" in response.text
        assert response.headers["content-type"].startswith("text/html")

    good = await client.post(
        "/profile", data={"full_name": "New Name", "csrf_token": client.cookies[CSRF_COOKIE]}
    )
    assert good.status_code == 303


async def test_json_post_without_or_with_a_wrong_header_is_refused(
    counselor_client: httpx.AsyncClient,
) -> None:
    client = counselor_client
    right = client.headers.pop("X-CSRF-Token")

    missing = await client.post("/api/auth/logout")
    wrong = await client.post("/api/auth/logout", headers={"X-CSRF-Token": "nope"})

    assert missing.status_code == 403
    assert missing.json() == {
        "detail": "CSRF check failed: send the token in the X-CSRF-Token header "
        "or the csrf_token form field."
    }
    assert wrong.status_code == 403
    assert wrong.json()["detail"].startswith("CSRF check failed: the token does not match")
    assert (await client.get("/api/auth/me")).status_code == 200  # nothing happened

    ok = await client.post("/api/auth/logout", headers={"X-CSRF-Token": right})
    assert ok.status_code == 204


async def test_token_without_its_cookie_is_refused(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    token = await log_in(client, counselor.email)
    client.cookies.delete(CSRF_COOKIE)

    response = await client.post("/api/auth/logout", headers={"X-CSRF-Token": token})

    assert response.status_code == 403
    assert "cookie is missing" in response.json()["detail"]


async def test_login_rotates_the_token(client: httpx.AsyncClient, counselor: Counselor) -> None:
    await client.get("/login")
    before = client.cookies[CSRF_COOKIE]

    token = await log_in(client, counselor.email)

    assert token != before
    assert client.cookies[CSRF_COOKIE] == token


async def test_json_login_is_exempt_but_the_form_login_is_not(
    client: httpx.AsyncClient, counselor: Counselor
) -> None:
    # No cookie, no token: the JSON login works (its content type is its protection).
    api = await client.post(
        "/api/auth/login", json={"email": counselor.email, "password": DEFAULT_PASSWORD}
    )
    assert api.status_code == 200

    client.cookies.clear()
    form = await client.post(
        "/login", data={"email": counselor.email, "password": DEFAULT_PASSWORD}
    )
    assert form.status_code == 403


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_new_routes_are_protected_without_opting_in(runtime: Runtime, method: str) -> None:
    app = create_app(runtime)

    @app.api_route("/api/test-only/thing", methods=[method])
    async def thing() -> dict[str, bool]:
        return {"changed": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/login")
        refused = await client.request(method, "/api/test-only/thing")
        allowed = await client.request(
            method, "/api/test-only/thing", headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
        )

    assert refused.status_code == 403
    assert allowed.status_code == 200

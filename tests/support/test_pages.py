"""The support desk's dashboard pages (the shells the scripts fill) and the assignable counselor
list. What the pages do in a browser is tests/browser/test_support_inbox.py."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.staff.models import Counselor
from counseldesk.support import service
from tests.factories import make_counselor, make_student


async def test_the_pages_need_a_login(client: httpx.AsyncClient) -> None:
    inbox = await client.get("/support")
    assert inbox.status_code == 303
    assert inbox.headers["location"] == "/login?next=/support"
    chat = await client.get("/support/12")
    assert chat.headers["location"] == "/login?next=/support/12"


async def test_the_inbox_shell_has_its_filters_and_the_nav_link(
    counselor_client: httpx.AsyncClient,
) -> None:
    response = await counselor_client.get("/support")
    assert response.status_code == 200
    page = response.text
    assert '<a href="/support" aria-current="page">Support inbox</a>' in page
    for name in ("q", "status", "priority", "category_id", "assigned"):
        assert f'name="{name}"' in page
    assert '<option value="in_progress">In progress</option>' in page
    assert 'src="/static/support_inbox.js"' in page


async def test_the_chat_shell_names_its_ticket(
    counselor_client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    student = await make_student(session)
    ticket, _ = await service.do_open_ticket(
        session, student, category_id=None, subject="Need <help> & advice", body="Hello"
    )
    await session.commit()
    response = await counselor_client.get(f"/support/{ticket.id}")
    assert response.status_code == 200
    assert f'data-ticket-id="{ticket.id}"' in response.text
    assert f'data-me="{counselor.id}"' in response.text
    # The subject is escaped like any student text.
    assert "<title>Need &lt;help&gt; &amp; advice · counseldesk</title>" in response.text


async def test_an_unknown_ticket_is_the_404_page(counselor_client: httpx.AsyncClient) -> None:
    response = await counselor_client.get("/support/987654321")
    assert response.status_code == 404
    assert "Ticket 987654321 does not exist." in response.text


async def test_counselors_list_the_active_colleagues_they_can_assign_to(
    counselor_client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    colleague = await make_counselor(session, full_name="Brian Kiptoo")
    await make_counselor(session, full_name="Gone Away", is_active=False)
    await session.commit()
    response = await counselor_client.get("/api/dashboard/counselors")
    assert response.status_code == 200
    listed = response.json()
    assert {"id": colleague.id, "full_name": "Brian Kiptoo"} in listed
    assert {"id": counselor.id, "full_name": counselor.full_name} in listed
    assert "Gone Away" not in {c["full_name"] for c in listed}
    assert set(listed[0]) == {"id", "full_name"}  # no emails or roles for non-admins


async def test_the_counselor_list_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/dashboard/counselors")
    assert response.status_code == 401

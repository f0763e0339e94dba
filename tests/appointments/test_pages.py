"""The appointments dashboard pages: the shells the scripts fill, who may open which. What the
pages do in a browser is tests/browser/test_appointments.py."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.models import AppointmentStatus
from counseldesk.staff.models import Counselor
from tests.appointments.factories import days_ahead, place
from tests.conftest import make_settings
from tests.factories import make_counselor, make_student


async def test_the_pages_need_a_login(client: httpx.AsyncClient) -> None:
    calendar = await client.get("/appointments")
    assert calendar.status_code == 303
    assert calendar.headers["location"] == "/login?next=/appointments"
    editor = await client.get("/appointments/availability")
    assert editor.status_code == 303
    assert editor.headers["location"] == "/login?next=/appointments/availability"


async def test_the_calendar_shell_has_its_views_filters_and_the_nav_link(
    counselor_client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    colleague = await make_counselor(session, full_name="Brian <Kiptoo>")
    await make_counselor(session, full_name="Gone Away", is_active=False)
    await session.commit()
    response = await counselor_client.get("/appointments")
    assert response.status_code == 200
    page = response.text
    assert '<a href="/appointments" aria-current="page">Appointments</a>' in page
    for view in ("day", "week", "list"):
        assert f'name="view" value="{view}"' in page
    for name in ("counselor", "status", "from", "to", "date"):
        assert f'name="{name}"' in page
    assert '<option value="no_show">No-show</option>' in page
    assert '<option value="mine">Only me</option>' in page
    # Active counselors are the columns and the filter's choices; names are escaped.
    assert f'<option value="{colleague.id}">Brian &lt;Kiptoo&gt;</option>' in page
    assert "Gone Away" not in page
    assert f'data-me="{counselor.id}"' in page
    assert 'data-timezone="Africa/Nairobi"' in page
    assert 'href="/appointments/availability"' in page
    assert 'src="/static/appointments.js"' in page


async def test_a_counselor_edits_their_own_availability_only(
    counselor_client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    colleague = await make_counselor(session, full_name="Brian Kiptoo")
    await session.commit()
    response = await counselor_client.get("/appointments/availability")
    assert response.status_code == 200
    page = response.text
    assert f'data-counselor-id="{counselor.id}"' in page
    assert "Your availability" in page
    # The navigation keeps "Appointments" current on its sub-page.
    assert '<a href="/appointments" aria-current="page">Appointments</a>' in page
    assert 'id="absence-form"' in page
    assert 'src="/static/appointments_availability.js"' in page
    # Administrators' bits are not there: no counselor picker, no closed days editor.
    assert 'id="counselor-picker"' not in page
    assert 'id="closed-form"' not in page

    # Another's editor is refused before the script would be refused by the API.
    other = await counselor_client.get(f"/appointments/availability?counselor_id={colleague.id}")
    assert other.status_code == 403
    assert "Only an administrator may edit another counselor" in other.text
    # Asking for oneself by id is the same page.
    own = await counselor_client.get(f"/appointments/availability?counselor_id={counselor.id}")
    assert own.status_code == 200
    assert f'data-counselor-id="{counselor.id}"' in own.text


async def test_an_admin_picks_any_counselor_and_edits_closed_days(
    admin_client: httpx.AsyncClient, admin: Counselor, session: AsyncSession
) -> None:
    colleague = await make_counselor(session, full_name="Grace Wanjiru")
    await session.commit()
    own = await admin_client.get("/appointments/availability")
    assert own.status_code == 200
    assert 'id="closed-form"' in own.text
    assert 'id="counselor-picker"' in own.text
    assert f'<option value="{admin.id}" selected>Amina Odhiambo (you)</option>' in own.text
    assert f'<option value="{colleague.id}">Grace Wanjiru</option>' in own.text

    other = await admin_client.get(f"/appointments/availability?counselor_id={colleague.id}")
    assert other.status_code == 200
    assert f'data-counselor-id="{colleague.id}"' in other.text
    assert "Grace Wanjiru’s availability" in other.text
    assert f'<option value="{colleague.id}" selected>Grace Wanjiru</option>' in other.text

    unknown = await admin_client.get("/appointments/availability?counselor_id=987654")
    assert unknown.status_code == 404
    assert "Counselor 987654 does not exist." in unknown.text


async def test_the_home_page_shows_the_counselors_day(
    counselor_client: httpx.AsyncClient, counselor: Counselor, session: AsyncSession
) -> None:
    settings = make_settings()
    colleague = await make_counselor(session)
    mine, theirs, tomorrow_student, gone = (
        await make_student(session, full_name="Amani <Wekesa>"),
        await make_student(session, full_name="Their Student"),
        await make_student(session, full_name="Tomorrow Student"),
        await make_student(session, full_name="Canceled Student"),
    )
    # Today at 23:00 and 23:30 office time (late, so still ahead whenever the test runs).
    late = days_ahead(settings, 0, 23)
    await place(session, student_id=mine.id, counselor_id=counselor.id, starts_at=late, minutes=30)
    await place(
        session,
        student_id=gone.id,
        counselor_id=counselor.id,
        starts_at=late + timedelta(minutes=30),
        minutes=30,
        status=AppointmentStatus.CANCELED,
    )
    await place(session, student_id=theirs.id, counselor_id=colleague.id, starts_at=late)
    await place(
        session,
        student_id=tomorrow_student.id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 1, 10),
        status=AppointmentStatus.PENDING,
    )
    await session.commit()

    page = (await counselor_client.get("/")).text

    assert "Your appointments today" in page
    assert "23:00–23:30" in page and "Amani &lt;Wekesa&gt;" in page  # escaped
    assert "Their Student" not in page and "Canceled Student" not in page
    assert "Tomorrow Student" not in page  # not today...
    assert "<strong>1</strong> upcoming\n    appointment waits" in page  # ...but it waits
    assert 'href="/appointments?view=day"' in page


async def test_the_home_page_with_a_free_day(counselor_client: httpx.AsyncClient) -> None:
    page = (await counselor_client.get("/")).text
    assert "No appointments today." in page
    assert "waits" not in page and "wait\n" not in page

"""The appointments JSON API through HTTP, on the real clock: the list with every parameter and
edge, the calendar, free slots, a counselor's actions (409 with alternatives), weekly hours,
absences and their conflicts, closed days, auth, and the statements a list page costs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from counseldesk.appointments import schedule
from counseldesk.appointments.models import Absence, Appointment, AppointmentStatus, ClosedDay
from counseldesk.appointments.service import NOTICE_KIND
from counseldesk.config import Settings
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.telegram.models import Notification
from tests import query_plans
from tests.appointments.factories import days_ahead, give_every_day_hours, place
from tests.conftest import log_in
from tests.factories import make_counselor, make_student

API = "/api/dashboard/appointments"


@pytest.fixture
def redis_or_none() -> None:
    """Nothing here depends on Redis (sessions are tested in tests/staff): run once, without."""
    return None


async def _get(client: httpx.AsyncClient, path: str = "", **params: Any) -> dict[str, Any]:
    response = await client.get(API + path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


async def _notices(session: AsyncSession, student: Student) -> list[Notification]:
    rows = await session.scalars(
        select(Notification)
        .where(
            Notification.telegram_user_id == student.telegram_user_id,
            Notification.kind == NOTICE_KIND,
        )
        .order_by(Notification.id)
    )
    return list(rows.all())


async def _series(
    session: AsyncSession,
    settings: Settings,
    count: int,
    *,
    counselor: Counselor,
    start_days: int = 1,
    status: AppointmentStatus = AppointmentStatus.CONFIRMED,
) -> list[Appointment]:
    """`count` appointments of `counselor`, an hour apart from 09:00 on `start_days` ahead
    (each with its own student), in time order."""
    first = days_ahead(settings, start_days, 9)
    placed = []
    for n in range(count):
        student = await make_student(session)
        placed.append(
            await place(
                session,
                student_id=student.id,
                counselor_id=counselor.id,
                starts_at=first + timedelta(hours=n),
                status=status,
            )
        )
    return placed


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("GET", "/calendar?start=2030-03-04"),
        ("GET", "/slots?date=2030-03-04"),
        ("GET", "/slots/days"),
        ("GET", "/1"),
        ("POST", "/1/confirm"),
        ("POST", "/1/cancel"),
        ("POST", "/1/complete"),
        ("POST", "/1/no-show"),
        ("POST", "/1/reschedule"),
        ("GET", "/availability/1"),
        ("PUT", "/availability/1"),
        ("GET", "/absences"),
        ("POST", "/absences"),
        ("POST", "/absences/1/cancel-conflicts"),
        ("DELETE", "/absences/1"),
        ("GET", "/closed-days"),
        ("POST", "/closed-days"),
        ("DELETE", "/closed-days/2030-03-04"),
    ],
)
async def test_every_route_needs_a_logged_in_counselor(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    # An anonymous browser still has a CSRF cookie and header, so this is the login check.
    await client.get("/api/auth/me")
    token = client.cookies.get("counseldesk_csrf")
    response = await client.request(
        method, API + path, json={}, headers={"X-CSRF-Token": token or ""}
    )
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "Not logged in."}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/{id}/confirm", None),
        ("POST", "/{id}/cancel", {"reason": "Counselor is ill"}),
        ("POST", "/{id}/reschedule", {"starts_at": "2030-03-04T07:00:00Z"}),
        ("PUT", "/availability/{me}", {"slot_minutes": 60, "days": {}}),
        ("POST", "/closed-days", {"day": "2030-03-04"}),
    ],
)
async def test_changes_need_the_csrf_header(
    admin_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: Counselor,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    [appointment] = await _series(
        session, settings, 1, counselor=admin, status=AppointmentStatus.PENDING
    )
    del admin_client.headers["X-CSRF-Token"]
    response = await admin_client.request(
        method, API + path.format(id=appointment.id, me=admin.id), json=body
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    await session.refresh(appointment)
    assert appointment.status is AppointmentStatus.PENDING
    assert await session.get(ClosedDay, date(2030, 3, 4)) is None


# --- the list: pages -----------------------------------------------------------------------------


async def test_an_empty_list(counselor_client: httpx.AsyncClient) -> None:
    assert await _get(counselor_client) == {
        "items": [],
        "page": 1,
        "limit": 20,
        "total": 0,
        "total_is_estimate": False,
        "has_next": False,
        "next_cursor": None,
    }


async def test_an_appointment_has_every_field(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    student = await make_student(session, full_name="Faith Achieng", admission_no="SC/1/2030")
    # 23:30 to 00:30 office time: the local day is the start's, the local end the next day's.
    starts_at = days_ahead(settings, 2, 23, 30)
    appointment = await place(
        session, student_id=student.id, counselor_id=counselor.id, starts_at=starts_at
    )
    appointment.reason = "Exam stress"
    await session.flush()

    body = await _get(counselor_client, f"/{appointment.id}")
    [listed] = (await _get(counselor_client))["items"]

    assert body == listed
    local_start = starts_at.astimezone(settings.tz)
    assert body == {
        "id": appointment.id,
        "status": "confirmed",
        "starts_at": starts_at.isoformat().replace("+00:00", "Z"),
        "ends_at": (starts_at + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "local_date": local_start.date().isoformat(),
        "local_start": "23:30",
        "local_end": "00:30",
        "counselor": {"id": counselor.id, "full_name": "Wanjiku Kamau"},
        "student": {"id": student.id, "full_name": "Faith Achieng", "admission_no": "SC/1/2030"},
        "reason": "Exam stress",
        "cancel_reason": None,
        "canceled_by": None,
        "reschedule_count": 0,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_pages_follow_cursors_to_the_end_in_start_order(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    placed = [a.id for a in await _series(session, settings, 45, counselor=counselor)]

    first = await _get(counselor_client)
    second = await _get(counselor_client, cursor=first["next_cursor"])
    third = await _get(counselor_client, cursor=second["next_cursor"])

    assert _ids(first) + _ids(second) + _ids(third) == placed
    assert (first["page"], second["page"], third["page"]) == (1, 2, 3)
    assert (first["total"], first["total_is_estimate"]) == (45, False)
    assert (first["has_next"], second["has_next"], third["has_next"]) == (True, True, False)
    assert third["next_cursor"] is None
    # page=N without a cursor lands on the same rows.
    assert _ids(await _get(counselor_client, page=3)) == placed[40:]
    assert _ids(await _get(counselor_client, page=2, limit=7)) == placed[7:14]
    # Beyond the end: empty, still with the total.
    beyond = await _get(counselor_client, page=9)
    assert (beyond["items"], beyond["total"], beyond["has_next"]) == ([], 45, False)


async def test_a_page_exactly_full_has_no_next(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    await _series(session, settings, 5, counselor=counselor)
    page = await _get(counselor_client, limit=5)
    assert (len(page["items"]), page["has_next"], page["next_cursor"]) == (5, False, None)
    page = await _get(counselor_client, limit=4)
    assert page["has_next"] and page["next_cursor"]
    rest = await _get(counselor_client, limit=4, cursor=page["next_cursor"])
    assert (len(rest["items"]), rest["has_next"]) == (1, False)


async def test_order_desc_is_latest_first_and_its_cursor_continues_backwards(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    placed = [a.id for a in await _series(session, settings, 7, counselor=counselor)]
    first = await _get(counselor_client, order="desc", limit=3)
    second = await _get(counselor_client, order="desc", limit=3, cursor=first["next_cursor"])
    assert _ids(first) + _ids(second) == placed[::-1][:6]
    assert _ids(await _get(counselor_client, order="desc", limit=3, page=3)) == [placed[0]]


async def test_same_start_times_are_ordered_by_id_across_pages(
    counselor_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    starts_at = days_ahead(settings, 3, 10)
    placed = []
    for _ in range(5):  # five counselors at the same hour
        colleague = await make_counselor(session)
        student = await make_student(session)
        appointment = await place(
            session, student_id=student.id, counselor_id=colleague.id, starts_at=starts_at
        )
        placed.append(appointment.id)
    first = await _get(counselor_client, limit=2)
    second = await _get(counselor_client, limit=2, cursor=first["next_cursor"])
    third = await _get(counselor_client, limit=2, cursor=second["next_cursor"])
    assert _ids(first) + _ids(second) + _ids(third) == sorted(placed)


# --- the list: filters ---------------------------------------------------------------------------


async def test_each_filter(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    colleague = await make_counselor(session)
    mine = await _series(session, settings, 3, counselor=counselor, start_days=1)
    theirs = await _series(
        session, settings, 2, counselor=colleague, start_days=2, status=AppointmentStatus.PENDING
    )
    everyone = [a.id for a in mine + theirs]
    student_id = theirs[0].student_id
    day_two = (datetime.now(settings.tz).date() + timedelta(days=2)).isoformat()

    assert _ids(await _get(counselor_client)) == everyone
    assert _ids(await _get(counselor_client, status="pending")) == [a.id for a in theirs]
    assert _ids(await _get(counselor_client, counselor_id=colleague.id)) == [a.id for a in theirs]
    assert _ids(await _get(counselor_client, mine="true")) == [a.id for a in mine]
    assert _ids(await _get(counselor_client, mine="true", counselor_id=counselor.id)) == [
        a.id for a in mine
    ]
    assert _ids(await _get(counselor_client, student_id=student_id)) == [theirs[0].id]
    assert _ids(await _get(counselor_client, **{"from": day_two})) == [a.id for a in theirs]
    assert _ids(await _get(counselor_client, to=day_two)) == everyone
    assert _ids(await _get(counselor_client, **{"from": day_two, "to": day_two})) == [
        a.id for a in theirs
    ]
    # Instants: `from` inclusive, `to` inclusive of the instant named.
    second_start = mine[1].starts_at.isoformat()
    assert _ids(await _get(counselor_client, **{"from": second_start})) == everyone[1:]
    assert _ids(await _get(counselor_client, to=second_start)) == everyone[:2]
    # The same instant written in office time (+03:00) means the same.
    in_office_time = mine[1].starts_at.astimezone(settings.tz).isoformat()
    assert _ids(await _get(counselor_client, to=in_office_time)) == everyone[:2]
    # Filters combine; empty values mean "no filter", as a form sends them.
    assert _ids(await _get(counselor_client, status="confirmed", counselor_id=colleague.id)) == []
    assert (
        _ids(await _get(counselor_client, status="", counselor_id="", student_id="", order=""))
        == everyone
    )


async def test_days_are_office_days(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    student = await make_student(session)
    # 00:30 office time is 21:30 UTC of the day before: it belongs to the office's day.
    late = await place(
        session,
        student_id=student.id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 4, 0, 30),
    )
    day = late.starts_at.astimezone(settings.tz).date()
    assert late.starts_at.astimezone(UTC).date() == day - timedelta(days=1)
    assert _ids(await _get(counselor_client, **{"from": day.isoformat()})) == [late.id]
    before = (day - timedelta(days=1)).isoformat()
    assert _ids(await _get(counselor_client, to=before)) == []


async def test_a_cursor_belongs_to_its_filters(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    await _series(session, settings, 3, counselor=counselor)
    page = await _get(counselor_client, limit=1)
    response = await counselor_client.get(
        API, params={"limit": 1, "cursor": page["next_cursor"], "status": "pending"}
    )
    assert response.status_code == 422
    assert "other filters" in response.json()["detail"]
    response = await counselor_client.get(
        API, params={"limit": 1, "cursor": page["next_cursor"], "order": "desc"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"limit": 101}, "less than or equal to 100"),
        ({"limit": 0}, "greater than or equal to 1"),
        ({"page": 0}, "greater than or equal to 1"),
        ({"page": "two"}, "valid integer"),
        ({"status": "lost"}, "'pending', 'confirmed'"),
        ({"order": "sideways"}, "'asc' or 'desc'"),
        ({"counselor_id": 0}, "greater than or equal to 1"),
        ({"student_id": "x"}, "valid integer"),
        ({"mine": "perhaps"}, "valid boolean"),
        ({"from": "2030-02-30"}, "is not a date"),
        ({"from": "tomorrow"}, "neither a date"),
        ({"to": "2030-03-04T10:00:00"}, "must include its offset"),
        ({"from": "2030-03-05", "to": "2030-03-04"}, "from must be before to"),
        ({"from": "0001-01-01"}, "within 100 years"),
        ({"cursor": "not-a-cursor!"}, "damaged"),
        ({"cursor": "eyJwIjoyfQ"}, "damaged"),
        ({"cursor": "x" * 513}, "at most 512"),
    ],
)
async def test_invalid_list_parameters_are_422_saying_why(
    counselor_client: httpx.AsyncClient, params: dict[str, Any], says: str
) -> None:
    response = await counselor_client.get(API, params=params)
    assert response.status_code == 422, response.text
    assert says in response.text


async def test_mine_with_another_counselor_is_422(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    colleague = await make_counselor(session)
    response = await counselor_client.get(
        API, params={"mine": "true", "counselor_id": colleague.id}
    )
    assert response.status_code == 422
    assert "not both" in response.json()["detail"]


async def test_a_forged_cursor_key_is_422(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    from counseldesk.appointments.repository import AppointmentFilters
    from counseldesk.db.paging import Cursor, encode_cursor

    await _series(session, settings, 2, counselor=counselor)
    fingerprint = AppointmentFilters().fingerprint()
    for key in (("yesterday", 1), ("2030-03-04T10:00:00", 1), ("2030-03-04T10:00:00+00:00",)):
        cursor = encode_cursor(Cursor(page=2, key=key, fingerprint=fingerprint))
        response = await counselor_client.get(API, params={"cursor": cursor})
        assert response.status_code == 422, key
        assert "damaged" in response.json()["detail"]


# --- the calendar --------------------------------------------------------------------------------


async def test_the_calendar_shows_every_status_closed_days_and_absences(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    colleague = await make_counselor(session, full_name="Brian Otieno")
    today = datetime.now(settings.tz).date()
    start = today + timedelta(days=10)
    student = await make_student(session)
    inside = [
        await place(
            session,
            student_id=student.id,
            counselor_id=who.id,
            starts_at=days_ahead(settings, 10 + offset, 9),
            status=status,
        )
        for who, offset, status in (
            (counselor, 0, AppointmentStatus.CONFIRMED),
            (colleague, 1, AppointmentStatus.CANCELED),
            (counselor, 2, AppointmentStatus.PENDING),
        )
    ]
    # Just outside: the day before, and the day after a 3-day view.
    for offset in (-1, 3):
        await place(
            session,
            student_id=student.id,
            counselor_id=counselor.id,
            starts_at=days_ahead(settings, 10 + offset, 9),
        )
    await schedule.add_closed_day(session, start + timedelta(days=1), "Jamhuri Day")
    await schedule.add_closed_day(session, start + timedelta(days=5), "Outside")
    away = await schedule.add_absence(
        session,
        counselor_id=colleague.id,
        starts_on=start - timedelta(days=3),
        ends_on=start,
        reason="Training",
        created_by_id=None,
    )
    await schedule.add_absence(
        session,
        counselor_id=colleague.id,
        starts_on=start + timedelta(days=3),
        ends_on=start + timedelta(days=4),
        reason="Outside",
        created_by_id=None,
    )

    body = await _get(counselor_client, "/calendar", start=start.isoformat(), days=3)

    assert (body["start"], body["days"], body["timezone"]) == (
        start.isoformat(),
        3,
        "Africa/Nairobi",
    )
    assert _ids(body) == [a.id for a in inside]
    assert [i["status"] for i in body["items"]] == ["confirmed", "canceled", "pending"]
    assert body["closed_days"] == [
        {"day": (start + timedelta(days=1)).isoformat(), "reason": "Jamhuri Day"}
    ]
    assert body["absences"] == [
        {
            "id": away.id,
            "counselor": {"id": colleague.id, "full_name": "Brian Otieno"},
            "starts_on": (start - timedelta(days=3)).isoformat(),
            "ends_on": start.isoformat(),
            "reason": "Training",
            "created_at": body["absences"][0]["created_at"],
        }
    ]
    # One counselor's calendar: their appointments and absences only.
    mine = await _get(
        counselor_client, "/calendar", start=start.isoformat(), days=3, counselor_id=counselor.id
    )
    assert _ids(mine) == [inside[0].id, inside[2].id]
    assert mine["absences"] == []
    assert len(mine["closed_days"]) == 1
    # A day view; days defaults to a week.
    assert _ids(await _get(counselor_client, "/calendar", start=start.isoformat(), days=1)) == [
        inside[0].id
    ]
    week = await _get(counselor_client, "/calendar", start=start.isoformat())
    assert week["days"] == 7 and len(week["items"]) == 4


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "Field required"),
        ({"start": "2030-13-01"}, "valid date"),
        ({"start": "9999-12-31"}, "within 100 years"),
        ({"start": "2030-03-04", "days": 0}, "greater than or equal to 1"),
        ({"start": "2030-03-04", "days": 8}, "less than or equal to 7"),
        ({"start": "2030-03-04", "counselor_id": "me"}, "valid integer"),
    ],
)
async def test_invalid_calendar_parameters_are_422_saying_why(
    counselor_client: httpx.AsyncClient, params: dict[str, Any], says: str
) -> None:
    response = await counselor_client.get(f"{API}/calendar", params=params)
    assert response.status_code == 422, response.text
    assert says in response.text


# --- free slots ----------------------------------------------------------------------------------


async def test_slots_of_a_day_and_days_with_slots(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    colleague = await make_counselor(session, full_name="Brian Otieno")
    await give_every_day_hours(session, counselor)
    await give_every_day_hours(session, colleague)
    day = datetime.now(settings.tz).date() + timedelta(days=2)
    student = await make_student(session)
    taken = await place(
        session,
        student_id=student.id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 2, 10),
    )

    body = await _get(counselor_client, "/slots", date=day.isoformat(), counselor_id=counselor.id)

    assert (body["date"], body["timezone"]) == (day.isoformat(), "Africa/Nairobi")
    assert [s["local_time"] for s in body["items"]] == [
        "09:00",
        "11:00",
        "13:00",
        "14:00",
        "15:00",
        "16:00",
    ]
    nine = body["items"][0]
    assert nine == {
        "starts_at": days_ahead(settings, 2, 9).isoformat().replace("+00:00", "Z"),
        "ends_at": days_ahead(settings, 2, 10).isoformat().replace("+00:00", "Z"),
        "local_time": "09:00",
        "counselors": [{"id": counselor.id, "full_name": "Wanjiku Kamau"}],
    }
    # Everyone's: 10:00 is still free with the colleague.
    everyone = await _get(counselor_client, "/slots", date=day.isoformat())
    ten = next(s for s in everyone["items"] if s["local_time"] == "10:00")
    assert ten["counselors"] == [{"id": colleague.id, "full_name": "Brian Otieno"}]
    # The appointment being moved does not block its own time.
    moving = await _get(
        counselor_client,
        "/slots",
        date=day.isoformat(),
        counselor_id=counselor.id,
        ignore_appointment_id=taken.id,
    )
    assert "10:00" in [s["local_time"] for s in moving["items"]]
    # Days: from a start, a limit, and where to continue.
    days = await _get(
        counselor_client, "/slots/days", counselor_id=counselor.id, start=day.isoformat(), limit=3
    )
    assert days["items"] == [
        {"date": (day + timedelta(days=n)).isoformat(), "free": 6 if n == 0 else 7}
        for n in range(3)
    ]
    assert days["next_start"] == (day + timedelta(days=3)).isoformat()
    # Outside the booking window: nothing.
    far = day + timedelta(days=settings.appointment_booking_days + 5)
    assert (await _get(counselor_client, "/slots", date=far.isoformat()))["items"] == []
    beyond = await _get(counselor_client, "/slots/days", start=far.isoformat())
    assert beyond == {"items": [], "next_start": None}


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/slots", {}, "Field required"),
        ("/slots", {"date": "tomorrow"}, "valid date"),
        ("/slots", {"date": "2030-03-04", "counselor_id": -1}, "greater than or equal to 1"),
        ("/slots", {"date": "2030-03-04", "ignore_appointment_id": "x"}, "valid integer"),
        ("/slots/days", {"limit": 0}, "greater than or equal to 1"),
        ("/slots/days", {"limit": 32}, "less than or equal to 31"),
        ("/slots/days", {"start": "2030-02-30"}, "valid date"),
    ],
)
async def test_invalid_slot_parameters_are_422_saying_why(
    counselor_client: httpx.AsyncClient, path: str, params: dict[str, Any], says: str
) -> None:
    response = await counselor_client.get(API + path, params=params)
    assert response.status_code == 422, response.text
    assert says in response.text


# --- one appointment and what a counselor does with it -------------------------------------------


async def test_an_unknown_appointment_is_404_and_a_bad_id_422(
    counselor_client: httpx.AsyncClient,
) -> None:
    response = await counselor_client.get(f"{API}/999999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no appointment 999999999."}
    assert (await counselor_client.post(f"{API}/999999999/confirm")).status_code == 404
    assert (await counselor_client.get(f"{API}/abc")).status_code == 422


async def test_confirm_a_pending_appointment_and_the_student_is_told(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    [appointment] = await _series(
        session, settings, 1, counselor=counselor, status=AppointmentStatus.PENDING
    )
    student = await session.get(Student, appointment.student_id)
    assert student is not None

    response = await counselor_client.post(f"{API}/{appointment.id}/confirm")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confirmed"
    [notice] = await _notices(session, student)
    assert "confirmed" in notice.payload["text"].lower()
    # Twice: the state no longer allows it.
    again = await counselor_client.post(f"{API}/{appointment.id}/confirm")
    assert again.status_code == 409
    assert "Only a pending appointment" in again.json()["detail"]


async def test_cancel_needs_a_reason_which_the_student_gets(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    [appointment] = await _series(session, settings, 1, counselor=counselor)
    student = await session.get(Student, appointment.student_id)
    assert student is not None
    url = f"{API}/{appointment.id}/cancel"

    for body in ({}, {"reason": ""}, {"reason": "  x "}, {"reason": "x" * 501}):
        response = await counselor_client.post(url, json=body)
        assert response.status_code == 422, body
    assert "at least 3 characters" in (await counselor_client.post(url, json={"reason": "x"})).text
    await session.refresh(appointment)
    assert appointment.status is AppointmentStatus.CONFIRMED
    assert await _notices(session, student) == []

    response = await counselor_client.post(url, json={"reason": "I am unwell today."})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["cancel_reason"], body["canceled_by"]) == (
        "canceled",
        "I am unwell today.",
        "counselor",
    )
    [notice] = await _notices(session, student)
    assert "I am unwell today." in notice.payload["text"]


async def test_complete_and_no_show_once_started(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    student = await make_student(session)
    started = await place(
        session,
        student_id=student.id,
        counselor_id=counselor.id,
        starts_at=datetime.now(UTC) - timedelta(hours=3),
    )
    missed = await place(
        session,
        student_id=student.id,
        counselor_id=counselor.id,
        starts_at=datetime.now(UTC) - timedelta(hours=1, minutes=30),
    )
    [future] = await _series(session, settings, 1, counselor=counselor)

    done = await counselor_client.post(f"{API}/{started.id}/complete")
    gone = await counselor_client.post(f"{API}/{missed.id}/no-show")
    early = await counselor_client.post(f"{API}/{future.id}/complete")

    assert (done.status_code, done.json()["status"]) == (200, "completed")
    assert (gone.status_code, gone.json()["status"]) == (200, "no_show")
    assert early.status_code == 409
    assert "once it has started" in early.json()["detail"]
    assert len(await _notices(session, student)) == 2


async def test_reschedule_to_a_free_slot_of_a_colleague(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    colleague = await make_counselor(session, full_name="Brian Otieno")
    await give_every_day_hours(session, counselor)
    await give_every_day_hours(session, colleague)
    student = await make_student(session)
    appointment = await place(
        session,
        student_id=student.id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 2, 10),
        status=AppointmentStatus.PENDING,
    )
    slots = await _get(
        counselor_client,
        "/slots",
        date=days_ahead(settings, 3, 12).astimezone(settings.tz).date().isoformat(),
        counselor_id=colleague.id,
        ignore_appointment_id=appointment.id,
    )
    target = slots["items"][1]

    response = await counselor_client.post(
        f"{API}/{appointment.id}/reschedule",
        json={"starts_at": target["starts_at"], "counselor_id": colleague.id},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["starts_at"], body["local_start"], body["status"]) == (
        target["starts_at"],
        "10:00",
        "confirmed",
    )
    assert body["counselor"] == {"id": colleague.id, "full_name": "Brian Otieno"}
    assert body["reschedule_count"] == 1
    [notice] = await _notices(session, student)
    assert "Brian Otieno" in notice.payload["text"]


async def test_reschedule_to_a_taken_time_is_409_with_alternatives(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    await give_every_day_hours(session, counselor)
    first, second = await make_student(session), await make_student(session)
    appointment = await place(
        session,
        student_id=first.id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 2, 10),
    )
    await place(
        session,
        student_id=second.id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 3, 10),
    )

    response = await counselor_client.post(
        f"{API}/{appointment.id}/reschedule",
        json={"starts_at": days_ahead(settings, 3, 10).isoformat()},
    )

    assert response.status_code == 409, response.text
    body = response.json()
    assert "is not a free slot" in body["detail"]
    assert [s["local_time"] for s in body["alternatives"]] == ["09:00", "11:00", "13:00"]
    assert all(
        s["counselors"] == [{"id": counselor.id, "full_name": "Wanjiku Kamau"}]
        for s in body["alternatives"]
    )
    # Nothing changed, nobody was told.
    await session.refresh(appointment)
    assert (appointment.starts_at, appointment.reschedule_count) == (
        days_ahead(settings, 2, 10),
        0,
    )
    assert await _notices(session, first) == []
    # Outside working hours: also taken, with alternatives.
    night = await counselor_client.post(
        f"{API}/{appointment.id}/reschedule",
        json={"starts_at": days_ahead(settings, 3, 3).isoformat()},
    )
    assert night.status_code == 409 and night.json()["alternatives"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "Field required"),
        ({"starts_at": "2030-03-04T10:00:00"}, "timezone"),
        ({"starts_at": "soon"}, "valid datetime"),
        ({"starts_at": "2030-03-04T10:00:00Z", "counselor_id": 0}, "greater than or equal"),
        ({"starts_at": "2030-03-04T10:00:00Z", "room": 4}, "Extra inputs"),
    ],
)
async def test_invalid_reschedule_bodies_are_422(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
    body: dict[str, Any],
    says: str,
) -> None:
    [appointment] = await _series(session, settings, 1, counselor=counselor)
    response = await counselor_client.post(f"{API}/{appointment.id}/reschedule", json=body)
    assert response.status_code == 422, response.text
    assert says in response.text


async def test_a_canceled_appointment_cannot_be_moved(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    [appointment] = await _series(
        session, settings, 1, counselor=counselor, status=AppointmentStatus.CANCELED
    )
    response = await counselor_client.post(
        f"{API}/{appointment.id}/reschedule",
        json={"starts_at": days_ahead(settings, 4, 10).isoformat()},
    )
    assert response.status_code == 409
    assert "cannot be moved" in response.json()["detail"]
    assert "alternatives" not in response.json()


# --- weekly hours --------------------------------------------------------------------------------


async def test_weekly_hours_round_trip(
    counselor_client: httpx.AsyncClient, counselor: Counselor
) -> None:
    url = f"{API}/availability/{counselor.id}"
    empty = await _get(counselor_client, f"/availability/{counselor.id}")
    assert empty == {
        "counselor_id": counselor.id,
        "slot_minutes": 60,
        "days": {str(d): [] for d in range(7)},
    }
    week = {
        "slot_minutes": 30,
        "days": {
            "0": [{"start": "13:00", "end": "17:00"}, {"start": "09:00", "end": "12:00"}],
            "4": [{"start": "08:30", "end": "10:00"}],
        },
    }

    response = await counselor_client.put(url, json=week)

    assert response.status_code == 200, response.text
    expected = {
        "counselor_id": counselor.id,
        "slot_minutes": 30,
        "days": {
            **{str(d): [] for d in range(7)},
            "0": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
            "4": [{"start": "08:30", "end": "10:00"}],
        },
    }
    assert response.json() == expected
    assert await _get(counselor_client, f"/availability/{counselor.id}") == expected
    # Echoing the body as it was read works too (it carries counselor_id).
    assert (await counselor_client.put(url, json=expected)).json() == expected


@pytest.mark.parametrize(
    ("week", "says"),
    [
        (
            {
                "slot_minutes": 60,
                "days": {
                    "0": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
                },
            },
            "09:00-12:00 and 11:00-13:00 overlap",
        ),
        (
            {"slot_minutes": 60, "days": {"0": [{"start": "12:00", "end": "09:00"}]}},
            "must end after it starts",
        ),
        ({"slot_minutes": 60, "days": {"0": [{"start": "9:00", "end": "12:00"}]}}, "HH:MM"),
        ({"slot_minutes": 60, "days": {"0": [{"start": "09:00", "end": "24:00"}]}}, "HH:MM"),
        ({"slot_minutes": 60, "days": {"7": [{"start": "09:00", "end": "12:00"}]}}, "not 7"),
        ({"slot_minutes": 60, "days": {"monday": []}}, "valid integer"),
        ({"slot_minutes": 5, "days": {}}, "10 to 240 minutes"),
        ({"slot_minutes": 60}, "Field required"),
        ({"slot_minutes": 60, "days": {"0": [{"start": "09:00"}]}}, "Field required"),
        ({"counselor_id": 1, "slot_minutes": 60, "days": {}}, "differs from the one in the path"),
    ],
)
async def test_invalid_weekly_hours_are_422_and_change_nothing(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    counselor: Counselor,
    week: dict[str, Any],
    says: str,
) -> None:
    await give_every_day_hours(session, counselor)
    before = await _get(counselor_client, f"/availability/{counselor.id}")
    if week.get("counselor_id") == 1:
        week["counselor_id"] = counselor.id + 1000
    response = await counselor_client.put(f"{API}/availability/{counselor.id}", json=week)
    assert response.status_code == 422, response.text
    assert says in response.text
    assert await _get(counselor_client, f"/availability/{counselor.id}") == before


async def test_only_an_admin_sets_someone_elses_hours(
    client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor, admin: Counselor
) -> None:
    colleague = await make_counselor(session)
    week = {"slot_minutes": 45, "days": {"2": [{"start": "09:00", "end": "12:00"}]}}
    await log_in(client, counselor.email)
    refused = await client.put(f"{API}/availability/{colleague.id}", json=week)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("You may change only your own")
    # Reading is open to every counselor.
    assert (await client.get(f"{API}/availability/{colleague.id}")).status_code == 200
    await log_in(client, admin.email)
    done = await client.put(f"{API}/availability/{colleague.id}", json=week)
    assert (done.status_code, done.json()["slot_minutes"]) == (200, 45)
    missing = await client.put(f"{API}/availability/999999", json=week)
    assert missing.status_code == 404
    assert (await client.get(f"{API}/availability/999999")).status_code == 404


# --- absences ------------------------------------------------------------------------------------


async def test_an_absence_lists_its_conflicts_which_can_all_be_canceled(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    today = datetime.now(settings.tz).date()
    first, last = today + timedelta(days=5), today + timedelta(days=6)
    students = [await make_student(session) for _ in range(4)]
    active = [
        await place(
            session,
            student_id=students[0].id,
            counselor_id=counselor.id,
            starts_at=days_ahead(settings, 5, 9),
            status=AppointmentStatus.PENDING,
        ),
        await place(
            session,
            student_id=students[1].id,
            counselor_id=counselor.id,
            starts_at=days_ahead(settings, 6, 16),
        ),
    ]
    # Not conflicts: already canceled, the day after, a colleague's.
    await place(
        session,
        student_id=students[2].id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 5, 11),
        status=AppointmentStatus.CANCELED,
    )
    after = await place(
        session,
        student_id=students[2].id,
        counselor_id=counselor.id,
        starts_at=days_ahead(settings, 7, 9),
    )
    colleague = await make_counselor(session)
    await place(
        session,
        student_id=students[3].id,
        counselor_id=colleague.id,
        starts_at=days_ahead(settings, 5, 9),
    )

    response = await counselor_client.post(
        f"{API}/absences",
        json={
            "counselor_id": counselor.id,
            "starts_on": first.isoformat(),
            "ends_on": last.isoformat(),
            "reason": "  Training   in Mombasa ",
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    absence_id = body["absence"]["id"]
    assert body["absence"] == {
        "id": absence_id,
        "counselor": {"id": counselor.id, "full_name": "Wanjiku Kamau"},
        "starts_on": first.isoformat(),
        "ends_on": last.isoformat(),
        "reason": "Training in Mombasa",
        "created_at": body["absence"]["created_at"],
    }
    assert _ids({"items": body["conflicts"]}) == [a.id for a in active]
    listed = await _get(counselor_client, "/absences", counselor_id=counselor.id)
    assert [a["id"] for a in listed["items"]] == [absence_id]
    # The absence's days are no longer offered.
    assert (await _get(counselor_client, "/slots", date=first.isoformat()))["items"] == []

    url = f"{API}/absences/{absence_id}/cancel-conflicts"
    refused = await counselor_client.post(url, json={"reason": "no"})
    assert refused.status_code == 422
    assert "at least 3 characters" in refused.json()["detail"]
    assert await _notices(session, students[0]) == []

    response = await counselor_client.post(url, json={"reason": "I am away at a training."})

    assert response.status_code == 200, response.text
    canceled = response.json()["canceled"]
    assert [c["id"] for c in canceled] == [a.id for a in active]
    assert {c["status"] for c in canceled} == {"canceled"}
    assert {c["cancel_reason"] for c in canceled} == {"I am away at a training."}
    for student in students[:2]:
        [notice] = await _notices(session, student)
        assert "I am away at a training." in notice.payload["text"]
    await session.refresh(after)
    assert after.status is AppointmentStatus.CONFIRMED
    # Once more: nothing left to cancel.
    again = await counselor_client.post(url, json={"reason": "I am away at a training."})
    assert again.json() == {"canceled": []}


async def test_absences_list_from_a_day_and_delete(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    today = datetime.now(settings.tz).date()
    colleague = await make_counselor(session)
    made = {}
    for name, who, first, last in (
        ("past", counselor, -10, -5),
        ("now", counselor, -1, 1),
        ("later", colleague, 20, 22),
    ):
        made[name] = await schedule.add_absence(
            session,
            counselor_id=who.id,
            starts_on=today + timedelta(days=first),
            ends_on=today + timedelta(days=last),
            reason=name,
            created_by_id=None,
        )

    current = await _get(counselor_client, "/absences")
    assert [a["reason"] for a in current["items"]] == ["now", "later"]
    earlier = await _get(counselor_client, "/absences", **{"from": str(today - timedelta(days=7))})
    assert [a["reason"] for a in earlier["items"]] == ["past", "now", "later"]
    theirs = await _get(counselor_client, "/absences", counselor_id=colleague.id)
    assert [a["reason"] for a in theirs["items"]] == ["later"]

    # Only your own (or an admin): a colleague's absence stays.
    refused = await counselor_client.delete(f"{API}/absences/{made['later'].id}")
    assert refused.status_code == 403
    refused = await counselor_client.post(
        f"{API}/absences/{made['later'].id}/cancel-conflicts", json={"reason": "Away again"}
    )
    assert refused.status_code == 403
    assert await session.get(Absence, made["later"].id) is not None

    deleted = await counselor_client.delete(f"{API}/absences/{made['now'].id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = await counselor_client.delete(f"{API}/absences/{made['now'].id}")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"There is no absence {made['now'].id}."}


async def test_absences_for_others_need_an_admin(
    client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor, admin: Counselor
) -> None:
    colleague = await make_counselor(session)
    body = {"counselor_id": colleague.id, "starts_on": "2030-03-04", "ends_on": "2030-03-05"}
    await log_in(client, counselor.email)
    refused = await client.post(f"{API}/absences", json=body)
    assert refused.status_code == 403
    assert "only your own" in refused.json()["detail"]
    assert (await session.scalars(select(Absence))).all() == []
    await log_in(client, admin.email)
    done = await client.post(f"{API}/absences", json=body)
    assert done.status_code == 201, done.text
    assert done.json()["absence"]["counselor"]["id"] == colleague.id
    missing = await client.post(f"{API}/absences", json={**body, "counselor_id": 999999})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"starts_on": "2030-03-05", "ends_on": "2030-03-04"}, "must end on or after"),
        ({"starts_on": "2030-03-05", "ends_on": "2031-03-06"}, "at most 366 days"),
        ({"starts_on": "2030-03-32", "ends_on": "2030-04-01"}, "valid date"),
        ({"starts_on": "9999-12-31", "ends_on": "9999-12-31"}, "within 100 years"),
        ({"ends_on": "2030-03-05"}, "Field required"),
        ({"starts_on": "2030-03-04", "ends_on": "2030-03-05", "reason": "x" * 201}, "at most 200"),
    ],
)
async def test_invalid_absences_are_422_and_add_nothing(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    counselor: Counselor,
    body: dict[str, Any],
    says: str,
) -> None:
    response = await counselor_client.post(
        f"{API}/absences", json={"counselor_id": counselor.id, **body}
    )
    assert response.status_code == 422, response.text
    assert says in response.text
    assert (await session.scalars(select(Absence))).all() == []


# --- closed days ---------------------------------------------------------------------------------


async def test_an_admin_closes_a_day_and_sees_its_conflicts(
    admin_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    admin: Counselor,
) -> None:
    colleague = await make_counselor(session)
    day = datetime.now(settings.tz).date() + timedelta(days=8)
    student = await make_student(session)
    conflicts = [
        await place(
            session,
            student_id=student.id,
            counselor_id=who.id,
            starts_at=days_ahead(settings, 8, h),
        )
        for who, h in ((admin, 9), (colleague, 14))
    ]
    await place(
        session,
        student_id=student.id,
        counselor_id=colleague.id,
        starts_at=days_ahead(settings, 9, 9),
    )

    response = await admin_client.post(
        f"{API}/closed-days", json={"day": day.isoformat(), "reason": "Jamhuri Day"}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["closed_day"] == {"day": day.isoformat(), "reason": "Jamhuri Day"}
    assert [c["id"] for c in body["conflicts"]] == [a.id for a in conflicts]
    # Again: the reason changes, the day stays one.
    again = await admin_client.post(
        f"{API}/closed-days", json={"day": day.isoformat(), "reason": "Public holiday"}
    )
    assert again.json()["closed_day"]["reason"] == "Public holiday"
    listed = await _get(admin_client, "/closed-days")
    assert listed == {"items": [{"day": day.isoformat(), "reason": "Public holiday"}]}
    assert (await _get(admin_client, "/closed-days", **{"from": str(day + timedelta(1))})) == {
        "items": []
    }

    deleted = await admin_client.delete(f"{API}/closed-days/{day.isoformat()}")
    assert deleted.status_code == 204
    gone = await admin_client.delete(f"{API}/closed-days/{day.isoformat()}")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"{day.isoformat()} is not a closed day."}
    assert (await admin_client.delete(f"{API}/closed-days/someday")).status_code == 422
    bad = await admin_client.post(f"{API}/closed-days", json={"day": "2030-02-30"})
    assert bad.status_code == 422


async def test_only_admins_change_closed_days(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await schedule.add_closed_day(session, date(2030, 3, 8), "Holiday")
    refused = await counselor_client.post(f"{API}/closed-days", json={"day": "2030-03-04"})
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Only administrators may do this."}
    assert (await counselor_client.delete(f"{API}/closed-days/2030-03-08")).status_code == 403
    assert await session.get(ClosedDay, date(2030, 3, 4)) is None
    assert await session.get(ClosedDay, date(2030, 3, 8)) is not None
    # Reading is open to every counselor.
    listed = await _get(counselor_client, "/closed-days", **{"from": "2030-03-01"})
    assert listed["items"] == [{"day": "2030-03-08", "reason": "Holiday"}]


# --- no N+1: statements per request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first", "expected"),
    [
        ("", 1, 1),
        ("?status=confirmed&mine=true", 1, 1),
        ("?order=desc&from=2000-01-01&to=2099-12-31", 1, 1),
        # page=N finds its first key in a statement of its own, then reads the page from it.
        ("?page=2&limit=5", 6, 2),
    ],
)
async def test_a_list_page_costs_the_same_statements_for_1_or_100_appointments(
    engine: AsyncEngine,
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
    query: str,
    first: int,
    expected: int,
) -> None:
    await _series(session, settings, first, counselor=counselor)
    one = await query_plans.statements_of(engine, counselor_client, f"{API}{query}")
    await _series(session, settings, 120, counselor=counselor, start_days=3)
    # A full page of 100 where the page size allows it.
    full = f"{API}{query}" if "limit" in query else f"{API}?limit=100&{query.lstrip('?')}"
    many = await query_plans.statements_of(engine, counselor_client, full)
    # The page: one statement with the people joined and the bounded total, whatever its size
    # (the login check is remembered from the warm-up request).
    assert len(one) == len(many) == expected, (one, many)


async def test_the_calendar_costs_the_same_statements_for_any_number_of_appointments(
    engine: AsyncEngine,
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    counselor: Counselor,
) -> None:
    start = datetime.now(settings.tz).date() + timedelta(days=1)
    url = f"{API}/calendar?start={start.isoformat()}"
    await _series(session, settings, 1, counselor=counselor)
    one = await query_plans.statements_of(engine, counselor_client, url)
    await _series(session, settings, 40, counselor=counselor, start_days=2)
    many = await query_plans.statements_of(engine, counselor_client, url)
    # The appointments with their people, closed days, absences (the login is remembered).
    assert len(one) == len(many) == 3, (one, many)

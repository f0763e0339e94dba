"""The support JSON API through HTTP: the seed's two endpoints with every parameter and edge,
the ticket, replies, notes, changes, read marks, retries, media, auth, and the number of SQL
statements each endpoint costs (no N+1)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from counseldesk.db import paging
from counseldesk.db.engine import Database
from counseldesk.runtime import Runtime
from counseldesk.staff.models import Counselor
from counseldesk.support import repository
from counseldesk.support.models import (
    SenderType,
    SupportMessage,
    SupportTicket,
    TicketPriority,
    TicketRead,
    TicketStatus,
)
from counseldesk.support.schemas import MessagePage, TicketPage
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.telegram.models import Notification, NotificationStatus
from counseldesk.web.app import create_app
from counseldesk.web.openapi import InvalidOut
from tests import query_plans
from tests.conftest import log_in, make_settings
from tests.factories import make_counselor, make_student
from tests.support.inbox_factories import (
    EPOCH,
    add_message,
    make_category,
    make_ticket,
    mark_read,
)

API = "/api/dashboard/support"


@pytest.fixture
def redis_or_none() -> None:
    """Nothing here depends on Redis (sessions are tested in tests/staff): run once, without."""
    return None


async def _tickets(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/tickets", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _messages(client: httpx.AsyncClient, ticket_id: int, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/tickets/{ticket_id}/messages", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


async def _inbox(session: AsyncSession, count: int, **kwargs: Any) -> list[SupportTicket]:
    """`count` tickets, newest activity last in the list returned."""
    return [await make_ticket(session, **kwargs) for _ in range(count)]


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tickets"),
        ("GET", "/tickets/1"),
        ("GET", "/tickets/1/messages"),
        ("POST", "/tickets/1/messages"),
        ("POST", "/tickets/1/notes"),
        ("PATCH", "/tickets/1"),
        ("POST", "/tickets/1/read"),
        ("POST", "/messages/1/retry"),
        ("GET", "/messages/1/media"),
    ],
)
async def test_every_route_needs_a_logged_in_counselor(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    # An anonymous browser still has a CSRF cookie and header, so this is the login check.
    await client.get("/api/auth/me")
    token = client.cookies.get("counseldesk_csrf")
    response = await client.request(
        method, API + path, json={"body": "x"}, headers={"X-CSRF-Token": token or ""}
    )
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "Not logged in."}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tickets/{id}/messages", {"body": "hi"}),
        ("POST", "/tickets/{id}/notes", {"body": "hi"}),
        ("PATCH", "/tickets/{id}", {"priority": "high"}),
        ("POST", "/tickets/{id}/read", {}),
    ],
)
async def test_changes_need_the_csrf_header(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    ticket = await make_ticket(session)
    del counselor_client.headers["X-CSRF-Token"]
    response = await counselor_client.request(method, API + path.format(id=ticket.id), json=body)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# --- the inbox: pages ----------------------------------------------------------------------------


async def test_an_empty_inbox(counselor_client: httpx.AsyncClient) -> None:
    page = await _tickets(counselor_client)
    assert page == {
        "items": [],
        "page": 1,
        "limit": 20,
        "total": 0,
        "total_is_estimate": False,
        "has_next": False,
        "next_cursor": None,
    }


async def test_a_ticket_row_has_every_field(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    student = await make_student(
        session, full_name="Faith Achieng", admission_no="SC/1001/2023", phone="+254700000001"
    )
    category = await make_category(session, "Mental health")
    ticket = await make_ticket(
        session,
        student=student,
        subject="Exam stress",
        status=TicketStatus.IN_PROGRESS,
        priority=TicketPriority.URGENT,
        category=category,
        assignee=counselor,
        crisis=True,
    )
    await add_message(session, ticket, "I cannot sleep before exams")

    [item] = (await _tickets(counselor_client))["items"]

    assert item == {
        "id": ticket.id,
        "subject": "Exam stress",
        "status": "in_progress",
        "priority": "urgent",
        "category": {"id": category.id, "name": "Mental health"},
        "student": {
            "id": student.id,
            "full_name": "Faith Achieng",
            "admission_no": "SC/1001/2023",
            "telegram_user_id": student.telegram_user_id,
        },
        "assigned_counselor": {"id": counselor.id, "full_name": counselor.full_name},
        "last_activity_at": item["last_activity_at"],
        "last_message_preview": "I cannot sleep before exams",
        "last_sender_type": "student",
        "message_count": 1,
        "unread_count": 1,
        "crisis": True,
        "created_at": item["created_at"],
    }
    assert item["last_activity_at"].startswith(ticket.last_activity_at.strftime("%Y-%m-%dT%H:%M"))


async def test_pages_are_newest_activity_first(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tickets = await _inbox(session, 45)
    newest_first = [t.id for t in reversed(tickets)]

    first = await _tickets(counselor_client)
    third = await _tickets(counselor_client, page=3)

    assert _ids(first) == newest_first[:20]
    assert (first["total"], first["total_is_estimate"], first["has_next"]) == (45, False, True)
    assert _ids(third) == newest_first[40:]
    assert (third["page"], third["has_next"], third["next_cursor"]) == (3, False, None)


async def test_exactly_one_full_page_has_no_next(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _inbox(session, 20)
    page = await _tickets(counselor_client)
    assert (len(page["items"]), page["has_next"], page["next_cursor"]) == (20, False, None)


async def test_a_page_beyond_the_end_is_empty_with_the_total(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _inbox(session, 21)
    page = await _tickets(counselor_client, page=4)
    assert (page["items"], page["page"], page["total"], page["has_next"]) == ([], 4, 21, False)
    # An offset past 2^31 entries is still just "past the end", not a database error.
    far = await _tickets(counselor_client, page=30_000_000, limit=100)
    assert (far["items"], far["total"], far["has_next"]) == ([], 21, False)


@pytest.mark.parametrize("limit", [1, 100])
async def test_limit_bounds_are_accepted(
    counselor_client: httpx.AsyncClient, session: AsyncSession, limit: int
) -> None:
    await _inbox(session, 3)
    page = await _tickets(counselor_client, limit=limit)
    assert (page["limit"], len(page["items"]), page["has_next"]) == (
        limit,
        min(limit, 3),
        limit < 3,
    )


@pytest.mark.parametrize(
    ("params", "where", "message"),
    [
        ({"limit": 101}, "limit", "less than or equal to 100"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": -1}, "limit", "greater than or equal to 1"),
        ({"limit": "abc"}, "limit", "valid integer"),
        ({"page": 0}, "page", "greater than or equal to 1"),
        ({"page": "x"}, "page", "valid integer"),
        ({"status": "lost"}, "status", "open"),
        ({"priority": "highest"}, "priority", "urgent"),
        ({"category_id": "abc"}, "category_id", "valid integer"),
        ({"category_id": 0}, "category_id", "greater than or equal to 1"),
        ({"assigned": "theirs"}, "assigned", "mine"),
        ({"q": "x" * 201}, "q", "at most 200"),
    ],
)
async def test_invalid_inbox_parameters_are_422_with_the_reason(
    counselor_client: httpx.AsyncClient, params: dict[str, Any], where: str, message: str
) -> None:
    response = await counselor_client.get(f"{API}/tickets", params=params)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", where]
    assert message in error["msg"]


async def test_a_search_for_text_postgresql_cannot_hold_is_422(
    counselor_client: httpx.AsyncClient,
) -> None:
    response = await counselor_client.get(f"{API}/tickets", params={"q": "land\x00lord"})
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"]


async def test_empty_filter_parameters_mean_no_filter(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _inbox(session, 2)
    page = await _tickets(
        counselor_client, status="", priority="", category_id="", assigned="", q="", cursor=""
    )
    assert page["total"] == 2


# --- the inbox: cursors --------------------------------------------------------------------------


async def test_following_cursors_visits_every_ticket_once(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # Ties in last activity are broken by id, so none is skipped or repeated at a page edge.
    tickets = []
    for i in range(23):
        tickets.append(
            await make_ticket(session, last_activity_at=EPOCH + timedelta(minutes=i // 3))
        )
    expected = [
        t.id for t in sorted(tickets, key=lambda t: (t.last_activity_at, t.id), reverse=True)
    ]

    seen: list[int] = []
    page = await _tickets(counselor_client, limit=5)
    pages = [page]
    while page["next_cursor"]:
        page = await _tickets(counselor_client, limit=5, cursor=page["next_cursor"])
        pages.append(page)
    for p in pages:
        seen += _ids(p)

    assert seen == expected
    assert [p["page"] for p in pages] == [1, 2, 3, 4, 5]
    assert all(p["total"] == 23 for p in pages)
    # page=N lands exactly where the cursors do.
    for p in pages:
        assert _ids(await _tickets(counselor_client, limit=5, page=p["page"])) == _ids(p)


async def test_a_cursor_keeps_its_place_when_new_activity_arrives(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    tickets = await _inbox(session, 6)
    first = await _tickets(counselor_client, limit=3)
    # A brand-new conversation arrives at the top; the next page still follows the first.
    await make_ticket(session, last_activity_at=EPOCH + timedelta(days=30))
    second = await _tickets(counselor_client, limit=3, cursor=first["next_cursor"])
    assert _ids(second) == [t.id for t in reversed(tickets[:3])]


async def test_a_damaged_cursor_is_422(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _inbox(session, 3)
    cursor = (await _tickets(counselor_client, limit=1))["next_cursor"]
    flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    for bad in (flipped, "not-a-cursor", "%%%", cursor[:-4]):
        response = await counselor_client.get(f"{API}/tickets", params={"cursor": bad})
        assert response.status_code == 422, bad
        assert "cursor" in response.json()["detail"]


async def test_a_cursor_used_with_other_filters_is_422(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _inbox(session, 3, status=TicketStatus.OPEN)
    cursor = (await _tickets(counselor_client, limit=1, status="open"))["next_cursor"]

    response = await counselor_client.get(
        f"{API}/tickets", params={"cursor": cursor, "status": "closed"}
    )
    assert response.status_code == 422
    assert "other filters" in response.json()["detail"]
    # Its own filters (and another page size) are fine.
    page = await _tickets(counselor_client, limit=2, status="open", cursor=cursor)
    assert len(page["items"]) == 2


# --- the inbox: filters and search ---------------------------------------------------------------


async def test_every_filter_and_their_combinations(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    other = await make_counselor(session)
    academic = await make_category(session)
    money = await make_category(session)
    a = await make_ticket(session, status=TicketStatus.OPEN, category=academic)
    b = await make_ticket(
        session, status=TicketStatus.OPEN, priority=TicketPriority.URGENT, assignee=counselor
    )
    c = await make_ticket(session, status=TicketStatus.CLOSED, category=money, assignee=other)
    d = await make_ticket(
        session,
        status=TicketStatus.REPLIED,
        priority=TicketPriority.URGENT,
        category=academic,
        assignee=counselor,
    )

    async def ids(**params: Any) -> set[int]:
        page = await _tickets(counselor_client, **params)
        assert page["total"] == len(page["items"])
        return set(_ids(page))

    assert await ids() == {a.id, b.id, c.id, d.id}
    assert await ids(status="open") == {a.id, b.id}
    assert await ids(status="closed") == {c.id}
    assert await ids(status="resolved") == set()
    assert await ids(priority="urgent") == {b.id, d.id}
    assert await ids(category_id=academic.id) == {a.id, d.id}
    assert await ids(category_id=money.id) == {c.id}
    assert await ids(assigned="mine") == {b.id, d.id}
    assert await ids(assigned="unassigned") == {a.id}
    assert await ids(assigned="all") == {a.id, b.id, c.id, d.id}
    assert await ids(status="open", priority="urgent") == {b.id}
    assert await ids(assigned="mine", category_id=academic.id) == {d.id}
    assert await ids(assigned="unassigned", status="open", category_id=academic.id) == {a.id}
    assert await ids(assigned="mine", status="closed") == set()


@pytest.fixture(params=["collect", "walk"])
def search_strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a search test with both strategies: collect the matching ids from the indexes first
    (rare terms), or walk the inbox testing each ticket (common terms)."""
    if request.param == "collect":
        monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", 10**12)
        monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 10**9)
    else:
        monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)
    paging.forget_estimates()
    return str(request.param)


async def test_search_finds_subject_name_admission_number_and_message_text(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    counselor: Counselor,
    search_strategy: str,
) -> None:
    kevin = await make_student(session, full_name="Kevin Mutua", admission_no="ED/2044/2022")
    lucy = await make_student(session, full_name="Lucy Nyambura", admission_no="ED/2051/2024")
    by_subject = await make_ticket(session, subject="Bursary appeal deadline")
    by_name = await make_ticket(session, student=kevin, subject="Question")
    by_number = await make_ticket(session, student=lucy, subject="Another question")
    by_text = await make_ticket(session, subject="Something else")
    await add_message(session, by_text, "My landlord wants the rent by Friday")
    note = await make_ticket(session, subject="Quiet one")
    await add_message(
        session,
        note,
        "Referred to the welfare office",
        is_internal=True,
        sender=SenderType.COUNSELOR,
        counselor=counselor,
    )

    async def found(q: str) -> set[int]:
        page = await _tickets(counselor_client, q=q)
        assert page["total_is_estimate"] is (search_strategy == "walk")
        return set(_ids(page))

    assert await found("bursary") == {by_subject.id}
    assert await found("BURSARY Appeal") == {by_subject.id}
    assert await found("kevin") == {by_name.id}
    assert await found("Mutua Kevin") == {by_name.id}
    assert await found("ED/2044/2022") == {by_name.id}
    assert await found("ed/20") == {by_name.id, by_number.id}
    assert await found("ED/205") == {by_number.id}
    assert await found("landlord") == {by_text.id}
    assert await found('"rent by friday"') == {by_text.id}
    assert await found("welfare") == {note.id}
    assert await found("nothing-like-this") == set()
    assert await found("!!!") == set()  # no words at all: matches nothing, not everything


async def test_search_combines_with_filters_and_pages(
    counselor_client: httpx.AsyncClient, session: AsyncSession, search_strategy: str
) -> None:
    matching = []
    for i in range(5):
        ticket = await make_ticket(
            session,
            subject=f"Exam worries {i}",
            status=TicketStatus.OPEN if i % 2 else TicketStatus.CLOSED,
        )
        matching.append(ticket)
    await make_ticket(session, subject="Unrelated", status=TicketStatus.OPEN)

    open_ones = await _tickets(counselor_client, q="exam", status="open")
    assert set(_ids(open_ones)) == {matching[1].id, matching[3].id}

    seen: list[int] = []
    page = await _tickets(counselor_client, q="exam", limit=2)
    seen += _ids(page)
    while page["next_cursor"]:
        page = await _tickets(counselor_client, q="exam", limit=2, cursor=page["next_cursor"])
        seen += _ids(page)
    assert seen == [t.id for t in reversed(matching)]
    assert _ids(await _tickets(counselor_client, q="exam", limit=2, page=3)) == [matching[0].id]


# --- unread counts --------------------------------------------------------------------------------


async def test_unread_counts_are_per_counselor(
    client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    colleague = await make_counselor(session)
    ticket = await make_ticket(session)
    first = await add_message(session, ticket, "one")
    await add_message(session, ticket, "answer", sender=SenderType.COUNSELOR, counselor=colleague)
    await add_message(session, ticket, "two")
    await add_message(session, ticket, "three")
    await add_message(
        session,
        ticket,
        "note",
        sender=SenderType.COUNSELOR,
        counselor=colleague,
        is_internal=True,
    )
    await mark_read(session, colleague, ticket, first.id)

    await log_in(client, counselor.email)
    assert (await _tickets(client))["items"][0]["unread_count"] == 3  # never read: all three
    await log_in(client, colleague.email)
    assert (await _tickets(client))["items"][0]["unread_count"] == 2  # read up to "one"


async def test_unread_counts_stop_at_the_cap(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ticket = await make_ticket(session)
    for i in range(repository.UNREAD_CAP + 3):
        await add_message(session, ticket, f"message {i}")
    [item] = (await _tickets(counselor_client))["items"]
    assert item["unread_count"] == repository.UNREAD_CAP


async def test_marking_read_clears_the_count_and_never_goes_back(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    messages = [await add_message(session, ticket, f"m{i}") for i in range(4)]

    response = await counselor_client.post(
        f"{API}/tickets/{ticket.id}/read", json={"up_to_message_id": messages[1].id}
    )
    assert response.status_code == 204
    assert (await _tickets(counselor_client))["items"][0]["unread_count"] == 2

    await counselor_client.post(
        f"{API}/tickets/{ticket.id}/read", json={"up_to_message_id": messages[0].id}
    )
    assert (await _tickets(counselor_client))["items"][0]["unread_count"] == 2

    assert (await counselor_client.post(f"{API}/tickets/{ticket.id}/read")).status_code == 204
    assert (await _tickets(counselor_client))["items"][0]["unread_count"] == 0
    mark = await session.scalar(
        select(TicketRead.last_read_message_id).where(TicketRead.counselor_id == counselor.id)
    )
    assert mark == messages[-1].id


async def test_a_read_mark_past_the_newest_message_is_clamped(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    last = await add_message(session, ticket, "hi")
    await counselor_client.post(
        f"{API}/tickets/{ticket.id}/read", json={"up_to_message_id": last.id + 1000}
    )
    later = await add_message(session, ticket, "are you there?")
    assert later.id < last.id + 1000
    assert (await _tickets(counselor_client))["items"][0]["unread_count"] == 1


@pytest.mark.parametrize("body", [{"up_to_message_id": 0}, {"up_to_message_id": "x"}, {"x": 1}])
async def test_invalid_read_marks_are_422(
    counselor_client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any]
) -> None:
    ticket = await make_ticket(session)
    response = await counselor_client.post(f"{API}/tickets/{ticket.id}/read", json=body)
    assert response.status_code == 422


# --- one ticket -----------------------------------------------------------------------------------


async def test_a_ticket_with_the_student_details(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    student = await make_student(session, phone="+254711000111", year_of_study=3)
    ticket = await make_ticket(session, student=student, status=TicketStatus.CLOSED)
    ticket.closed_at = ticket.last_activity_at
    await session.flush()

    response = await counselor_client.get(f"{API}/tickets/{ticket.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["student"]["phone"] == "+254711000111"
    assert body["student"]["year_of_study"] == 3
    assert body["closed_at"] is not None
    assert body["crisis_detected_at"] is None
    assert body["crisis"] is False


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/tickets/{id}", None),
        ("GET", "/tickets/{id}/messages", None),
        ("POST", "/tickets/{id}/messages", {"body": "hi"}),
        ("POST", "/tickets/{id}/notes", {"body": "hi"}),
        ("PATCH", "/tickets/{id}", {"status": "closed"}),
        ("POST", "/tickets/{id}/read", {}),
    ],
)
async def test_an_unknown_ticket_is_404(
    counselor_client: httpx.AsyncClient, method: str, path: str, json: Any
) -> None:
    response = await counselor_client.request(method, API + path.format(id=999999999), json=json)
    assert response.status_code == 404
    assert response.json() == {"detail": "Ticket 999999999 does not exist."}


# --- the chat -------------------------------------------------------------------------------------


async def test_message_pages_hold_the_newest_first_each_oldest_first(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ticket = await make_ticket(session)
    ids = [(await add_message(session, ticket, f"m{i}")).id for i in range(120)]

    first = await _messages(counselor_client, ticket.id)
    assert [m["id"] for m in first["items"]] == ids[70:]
    assert (first["total"], first["total_is_estimate"], first["has_next"]) == (120, False, True)

    second = await _messages(counselor_client, ticket.id, cursor=first["next_cursor"])
    assert [m["id"] for m in second["items"]] == ids[20:70]
    assert second["page"] == 2
    third = await _messages(counselor_client, ticket.id, cursor=second["next_cursor"])
    assert [m["id"] for m in third["items"]] == ids[:20]
    assert (third["has_next"], third["next_cursor"]) == (False, None)

    by_page = await _messages(counselor_client, ticket.id, page=2)
    assert [m["id"] for m in by_page["items"]] == ids[20:70]
    before = await _messages(counselor_client, ticket.id, before=ids[70], limit=10)
    assert [m["id"] for m in before["items"]] == ids[60:70]
    before_page_2 = await _messages(counselor_client, ticket.id, before=ids[70], limit=10, page=2)
    assert [m["id"] for m in before_page_2["items"]] == ids[50:60]
    beyond = await _messages(counselor_client, ticket.id, page=4)
    assert (beyond["items"], beyond["total"], beyond["has_next"]) == ([], 120, False)
    far = await _messages(counselor_client, ticket.id, page=30_000_000, limit=100)
    assert (far["items"], far["total"], far["has_next"]) == ([], 120, False)


async def test_an_empty_conversation(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ticket = await make_ticket(session)
    page = await _messages(counselor_client, ticket.id)
    assert (page["items"], page["total"], page["has_next"]) == ([], 0, False)


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"page": 0}, "page"),
        ({"before": "abc"}, "before"),
        ({"before": 0}, "before"),
    ],
)
async def test_invalid_message_parameters_are_422(
    counselor_client: httpx.AsyncClient, session: AsyncSession, params: dict[str, Any], where: str
) -> None:
    ticket = await make_ticket(session)
    response = await counselor_client.get(f"{API}/tickets/{ticket.id}/messages", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", where]


async def test_message_cursors_belong_to_their_ticket(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    one, two = await make_ticket(session), await make_ticket(session)
    for _ in range(3):
        await add_message(session, one)
        await add_message(session, two)
    cursor = (await _messages(counselor_client, one.id, limit=1))["next_cursor"]

    response = await counselor_client.get(
        f"{API}/tickets/{two.id}/messages", params={"cursor": cursor}
    )
    assert response.status_code == 422
    response = await counselor_client.get(
        f"{API}/tickets/{one.id}/messages", params={"cursor": cursor, "before": 5}
    )
    assert response.status_code == 422
    assert "either cursor or before" in response.json()["detail"]


async def test_each_message_shows_sender_media_and_delivery(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    photo = await add_message(
        session, ticket, "", media_kind="photo", media_file_id="AgAD123", media_mime_type=None
    )
    queued = await add_message(
        session,
        ticket,
        "queued",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.PENDING,
    )
    sending = await add_message(
        session,
        ticket,
        "sending",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.SENDING,
    )
    sent = await add_message(
        session,
        ticket,
        "sent",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.SENT,
    )
    failed = await add_message(
        session,
        ticket,
        "failed",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.FAILED,
        error="Forbidden: bot was blocked by the user",
    )
    archived = await add_message(
        session, ticket, "old reply", sender=SenderType.COUNSELOR, counselor=counselor
    )
    system = await add_message(
        session, ticket, "Status: Open → Closed", sender=SenderType.SYSTEM, is_internal=True
    )

    items = {m["id"]: m for m in (await _messages(counselor_client, ticket.id))["items"]}

    assert items[photo.id]["media"] == {
        "kind": "photo",
        "file_name": None,
        "mime_type": None,
        "url": f"{API}/messages/{photo.id}/media",
    }
    assert items[photo.id]["counselor"] is None and items[photo.id]["delivery"] is None
    assert items[queued.id]["counselor"] == {"id": counselor.id, "full_name": counselor.full_name}
    assert items[queued.id]["delivery"] == {
        "status": "queued",
        "error": None,
        "notification_id": queued.notification_id,
    }
    assert items[sending.id]["delivery"]["status"] == "queued"
    assert items[sent.id]["delivery"]["status"] == "sent"
    assert items[failed.id]["delivery"] == {
        "status": "failed",
        "error": "Forbidden: bot was blocked by the user",
        "notification_id": failed.notification_id,
    }
    assert items[archived.id]["delivery"] is None
    assert items[system.id]["sender_type"] == "system"
    assert items[system.id]["is_internal"] is True


# --- replies, notes, changes, retries -------------------------------------------------------------


async def test_a_reply_is_stored_queued_and_moves_the_ticket(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    await add_message(session, ticket, "Can we talk?")

    response = await counselor_client.post(
        f"{API}/tickets/{ticket.id}/messages", json={"body": "  Of course. Thursday at 10?  "}
    )

    assert response.status_code == 201, response.text
    message = response.json()
    assert message["body"] == "Of course. Thursday at 10?"
    assert message["sender_type"] == "counselor"
    assert message["counselor"] == {"id": counselor.id, "full_name": counselor.full_name}
    assert message["is_internal"] is False
    assert message["delivery"]["status"] == "queued"
    notification = await session.get(Notification, message["delivery"]["notification_id"])
    assert notification is not None and notification.telegram_user_id == ticket.telegram_user_id
    detail = (await counselor_client.get(f"{API}/tickets/{ticket.id}")).json()
    assert detail["status"] == "replied"
    assert detail["assigned_counselor"]["id"] == counselor.id
    assert detail["last_message_preview"] == "Of course. Thursday at 10?"
    assert detail["message_count"] == 2
    assert detail["unread_count"] == 0  # answering means having read it
    newest = (await _messages(counselor_client, ticket.id))["items"][-1]
    assert newest == message


@pytest.mark.parametrize("path", ["messages", "notes"])
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"body": ""}, 422),
        ({"body": "   "}, 422),
        ({"body": "x" * 4001}, 422),
        ({}, 422),
        ({"body": "half\u0000way"}, 422),  # PostgreSQL's text cannot hold it
    ],
)
async def test_an_empty_or_too_long_text_is_refused(
    counselor_client: httpx.AsyncClient,
    session: AsyncSession,
    path: str,
    body: dict[str, Any],
    status: int,
) -> None:
    ticket = await make_ticket(session)
    response = await counselor_client.post(f"{API}/tickets/{ticket.id}/{path}", json=body)
    assert response.status_code == status
    assert (
        await session.scalar(select(SupportMessage.id).where(SupportMessage.ticket_id == ticket.id))
        is None
    )


async def test_half_a_utf16_pair_is_refused(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # Valid JSON, but not text PostgreSQL can hold: refused with a reason, nothing stored.
    ticket = await make_ticket(session)
    response = await counselor_client.post(
        f"{API}/tickets/{ticket.id}/messages",
        content=b'{"body": "half\\ud800way"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "unicode" in str(response.json()["detail"])
    assert (
        await session.scalar(select(SupportMessage.id).where(SupportMessage.ticket_id == ticket.id))
        is None
    )


async def test_a_note_is_internal_and_never_queued(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ticket = await make_ticket(session, status=TicketStatus.OPEN)

    response = await counselor_client.post(
        f"{API}/tickets/{ticket.id}/notes", json={"body": "Follow up after exams"}
    )

    assert response.status_code == 201
    note = response.json()
    assert (note["is_internal"], note["delivery"], note["sender_type"]) == (
        True,
        None,
        "counselor",
    )
    assert await session.scalar(select(Notification.id)) is None
    detail = (await counselor_client.get(f"{API}/tickets/{ticket.id}")).json()
    assert detail["status"] == "open"


async def test_patch_changes_only_what_is_sent_and_null_unassigns(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    colleague = await make_counselor(session, full_name="Brian Kiptoo")
    ticket = await make_ticket(session, status=TicketStatus.OPEN)

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = await counselor_client.patch(f"{API}/tickets/{ticket.id}", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    taken = await patch({"assigned_counselor_id": counselor.id})
    assert (taken["status"], taken["assigned_counselor"]["id"]) == ("in_progress", counselor.id)
    urgent = await patch({"priority": "urgent"})
    assert (urgent["priority"], urgent["assigned_counselor"]["id"]) == ("urgent", counselor.id)
    moved = await patch({"assigned_counselor_id": colleague.id, "status": "replied"})
    assert moved["assigned_counselor"] == {"id": colleague.id, "full_name": "Brian Kiptoo"}
    unassigned = await patch({"assigned_counselor_id": None})
    assert unassigned["assigned_counselor"] is None
    assert unassigned["priority"] == "urgent"
    closed = await patch({"status": "closed"})
    assert closed["closed_at"] is not None
    assert await patch({}) == closed

    timeline = [
        m["body"]
        for m in (await _messages(counselor_client, ticket.id))["items"]
        if m["sender_type"] == "system"
    ]
    assert timeline[0].startswith("Taken")
    assert any("Unassigned" in line for line in timeline)


@pytest.mark.parametrize(
    "body",
    [
        {"status": None},
        {"priority": None},
        {"status": "gone"},
        {"assigned_counselor_id": 0},
        {"assigned_counselor_id": 99999999},
        {"subject": "new"},
    ],
)
async def test_invalid_patches_are_422(
    counselor_client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any]
) -> None:
    ticket = await make_ticket(session)
    response = await counselor_client.patch(f"{API}/tickets/{ticket.id}", json=body)
    assert response.status_code == 422, response.text


async def test_a_failed_delivery_can_be_retried_once_it_failed(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    student = await make_student(session)
    student.is_reachable = False
    ticket = await make_ticket(session, student=student)
    failed = await add_message(
        session,
        ticket,
        "hello",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.FAILED,
        error="Forbidden: bot was blocked by the user",
    )

    response = await counselor_client.post(f"{API}/messages/{failed.id}/retry")

    assert response.status_code == 200, response.text
    assert response.json()["delivery"] == {
        "status": "queued",
        "error": None,
        "notification_id": failed.notification_id,
    }
    notification = await session.get(Notification, failed.notification_id)
    assert notification is not None
    await session.refresh(notification)
    await session.refresh(student)
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 0)
    assert student.is_reachable is True

    again = await counselor_client.post(f"{API}/messages/{failed.id}/retry")
    assert again.status_code == 409
    assert again.json() == {"detail": "Only a failed delivery can be retried; this one is pending."}


async def test_only_failed_replies_can_be_retried(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    student_message = await add_message(session, ticket, "hi")
    sent = await add_message(
        session,
        ticket,
        "sent",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.SENT,
    )
    for message in (student_message, sent):
        response = await counselor_client.post(f"{API}/messages/{message.id}/retry")
        assert response.status_code == 409
    missing = await counselor_client.post(f"{API}/messages/999999999/retry")
    assert missing.status_code == 404


async def test_media_of_a_message_without_media_is_404(
    counselor_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ticket = await make_ticket(session)
    message = await add_message(session, ticket, "plain text")
    response = await counselor_client.get(f"{API}/messages/{message.id}/media")
    assert response.status_code == 404
    assert (await counselor_client.get(f"{API}/messages/999999999/media")).status_code == 404


# --- no N+1: statements per request ---------------------------------------------------------------


async def _many_tickets(session: AsyncSession, count: int, counselor: Counselor) -> None:
    category = await make_category(session)
    for _ in range(count):
        student = await make_student(session)
        ticket = await make_ticket(session, student=student, category=category, assignee=counselor)
        first = await add_message(session, ticket, "hello")
        await add_message(session, ticket, "more")
        await add_message(
            session,
            ticket,
            "reply",
            sender=SenderType.COUNSELOR,
            counselor=counselor,
            delivery=NotificationStatus.SENT,
        )
        await mark_read(session, counselor, ticket, first.id)


@pytest.mark.parametrize(
    ("url", "first", "expected"),
    [
        (f"{API}/tickets", 1, 1),
        (f"{API}/tickets?status=open&assigned=mine", 1, 1),
        # page=N finds its first key on its own, then reads the page from it (see
        # repository._anchor_statement for why that is two statements).
        (f"{API}/tickets?page=2&limit=5", 6, 2),
        # Search collects the matches (capped, to choose how to find them) and reads the page
        # in one statement, with its kept plan. The tests' readers share the test's connection,
        # so they set the planner setting and reset it at the end; a pooled connection keeps
        # it for the next search, which sends neither (tests/test_records.py).
        (f"{API}/tickets?q=ticket", 1, 3),
    ],
)
async def test_an_inbox_page_costs_the_same_statements_for_1_or_20_tickets(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    session: AsyncSession,
    counselor: Counselor,
    url: str,
    first: int,
    expected: int,
) -> None:
    await log_in(client, counselor.email)
    await _many_tickets(session, first, counselor)  # the page shows one ticket
    one = await query_plans.statements_of(engine, client, url)
    await _many_tickets(session, 30, counselor)  # now a full page
    many = await query_plans.statements_of(engine, client, url)
    # The page itself is one statement with the joins, unread counts and the bounded total,
    # whatever its size. The login check costs none: the warm-up request left it in the
    # identity cache.
    assert len(one) == len(many) == expected, (one, many)


async def test_a_message_page_costs_the_same_statements_for_1_or_50_messages(
    engine: AsyncEngine, client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    await log_in(client, counselor.email)
    ticket = await make_ticket(session)
    await add_message(session, ticket, "hi")
    one = await query_plans.statements_of(engine, client, f"{API}/tickets/{ticket.id}/messages")
    for i in range(60):
        await add_message(
            session,
            ticket,
            f"reply {i}",
            sender=SenderType.COUNSELOR,
            counselor=counselor,
            delivery=NotificationStatus.SENT,
        )
    many = await query_plans.statements_of(engine, client, f"{API}/tickets/{ticket.id}/messages")
    paged = await query_plans.statements_of(
        engine, client, f"{API}/tickets/{ticket.id}/messages?page=2"
    )
    assert len(one) == len(many) == len(paged) == 1, (one, many, paged)


async def test_the_openapi_schema_describes_the_support_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    paths = schema["paths"]
    for path, methods in {
        "/api/dashboard/support/tickets": {"get"},
        "/api/dashboard/support/tickets/{ticket_id}": {"get", "patch"},
        "/api/dashboard/support/tickets/{ticket_id}/messages": {"get", "post"},
        "/api/dashboard/support/tickets/{ticket_id}/notes": {"post"},
        "/api/dashboard/support/tickets/{ticket_id}/read": {"post"},
        "/api/dashboard/support/messages/{message_id}/retry": {"post"},
        "/api/dashboard/support/messages/{message_id}/media": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    parameters = {p["name"] for p in paths["/api/dashboard/support/tickets"]["get"]["parameters"]}
    assert parameters == {
        "page",
        "limit",
        "status",
        "priority",
        "category_id",
        "assigned",
        "q",
        "cursor",
    }
    components = schema["components"]["schemas"]
    for name in ("TicketPage", "TicketSummary", "TicketDetail", "MessagePage", "MessageOut"):
        assert components[name].get("examples"), name


async def test_the_schema_describes_both_shapes_a_422_comes_in(
    counselor_client: httpx.AsyncClient,
) -> None:
    # A parameter that fails validation: a list of located errors; a rule no single field
    # breaks (a damaged cursor): one sentence. A client generated from the schema reads both.
    schema = (await counselor_client.get("/api/openapi.json")).json()
    invalid = schema["paths"]["/api/dashboard/support/tickets"]["get"]["responses"]["422"]
    reference = invalid["content"]["application/json"]["schema"]["$ref"]
    assert reference == "#/components/schemas/InvalidOut"
    for params in ({"limit": 101}, {"cursor": "not-a-cursor"}):
        response = await counselor_client.get(f"{API}/tickets", params=params)
        assert response.status_code == 422
        InvalidOut.model_validate(response.json(), strict=True)


# --- student media through the server -------------------------------------------------------------


async def test_student_media_is_fetched_from_telegram_once_then_served_from_the_cache(
    db: Database, session: AsyncSession, counselor: Counselor, tmp_path: Path
) -> None:
    emulator = EmulatorServer(port=0)
    await emulator.start()
    app = create_app(
        Runtime(
            settings=make_settings(emulator_port=emulator.port, var_dir=tmp_path),
            db=db,
            redis=None,
        )
    )
    try:
        # A student sends a photo and a document to the bot: real Telegram file ids.
        emulator.state.create_user(user_id=7_700_000_001, first_name="Faith")
        photo_bytes = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
        photo = emulator.state.user_sends_media(7_700_000_001, "photo", photo_bytes)
        document = emulator.state.user_sends_media(
            7_700_000_001,
            "document",
            b"%PDF-1.4 notes",
            file_name="notes.pdf",
            mime_type="application/pdf",
        )
        ticket = await make_ticket(session)
        photo_message = await add_message(
            session,
            ticket,
            "",
            media_kind="photo",
            media_file_id=photo.entry.media.file_id,  # type: ignore[attr-defined]
        )
        document_message = await add_message(
            session,
            ticket,
            "my notes",
            media_kind="document",
            media_file_id=document.entry.media.file_id,  # type: ignore[attr-defined]
            media_file_name="notes.pdf",
            media_mime_type="application/pdf",
        )
        gone = await add_message(
            session, ticket, "", media_kind="voice", media_file_id="AwACAgQAAxkBAAI-no-such-file"
        )

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            await log_in(client, counselor.email)
            response = await client.get(f"{API}/messages/{photo_message.id}/media")
            assert response.status_code == 200, response.text
            assert response.content == photo_bytes
            assert response.headers["content-type"] == "image/jpeg"
            assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
            assert "attachment" not in response.headers.get("content-disposition", "")

            doc = await client.get(f"{API}/messages/{document_message.id}/media")
            assert doc.status_code == 200
            assert doc.content == b"%PDF-1.4 notes"
            assert doc.headers["content-type"] == "application/pdf"
            assert doc.headers["content-disposition"] == 'attachment; filename="notes.pdf"'

            missing = await client.get(f"{API}/messages/{gone.id}/media")
            assert missing.status_code == 404

            # Telegram is asked once: with the emulator gone, the cached copy still answers.
            await emulator.stop()
            again = await client.get(f"{API}/messages/{photo_message.id}/media")
            assert (again.status_code, again.content) == (200, photo_bytes)
            assert len(list((tmp_path / "media-cache").iterdir())) == 2
            unreachable = await client.get(f"{API}/messages/{gone.id}/media")
            assert unreachable.status_code == 502
    finally:
        bot = getattr(app.state, "media_bot", None)
        if bot is not None:
            await bot.session.close()
        await emulator.stop()


async def test_the_list_pages_send_exactly_what_their_schemas_describe(
    counselor_client: httpx.AsyncClient, session: AsyncSession, counselor: Counselor
) -> None:
    # The two list endpoints serialize the repository's views without a response model (for
    # speed); the JSON must be the one the documented models would produce, field for field.
    category = await make_category(session)
    busy = await make_ticket(session, category=category, assignee=counselor, crisis=True)
    await make_ticket(session, status=TicketStatus.CLOSED, priority=TicketPriority.LOW)
    await add_message(session, busy, "I cannot sleep", touch=True)
    await add_message(
        session,
        busy,
        "Sent",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.SENT,
    )
    await add_message(
        session,
        busy,
        "Lost",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.FAILED,
        error="Forbidden: bot was blocked by the user",
    )
    await add_message(session, busy, "A note", counselor=counselor, is_internal=True)
    await add_message(
        session, busy, "", media_kind="photo", media_file_id="AgAD", media_mime_type="image/jpeg"
    )
    await add_message(
        session,
        busy,
        "notes.pdf",
        media_kind="document",
        media_file_id="BQAD",
        media_file_name="notes.pdf",
        media_mime_type="application/pdf",
    )

    inbox = await repository.ticket_page(session, counselor.id, repository.InboxFilters())
    assert await _tickets(counselor_client) == TicketPage.model_validate(inbox).model_dump(
        mode="json"
    )
    chat = await repository.message_page(session, busy.id)
    assert await _messages(counselor_client, busy.id) == MessagePage.model_validate(
        chat
    ).model_dump(mode="json")
    # And what the tests compare is rich: every optional part present somewhere, and absent.
    items = (await _tickets(counselor_client))["items"]
    assert {i["category"] is None for i in items} == {True, False}
    assert {i["assigned_counselor"] is None for i in items} == {True, False}
    assert {i["crisis"] for i in items} == {True, False}
    messages = (await _messages(counselor_client, busy.id))["items"]
    assert {m["media"] is None for m in messages} == {True, False}
    assert {m["delivery"] is None for m in messages} == {True, False}
    assert {m["counselor"] is None for m in messages} == {True, False}

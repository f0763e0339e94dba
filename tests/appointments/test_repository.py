"""The appointment list's queries below HTTP, on a table of realistic size: each list view walks
the index built for it (PostgreSQL's own choice after ANALYZE, no planner switch turned off),
cursors start inside the index, large totals are estimates, and a page is one statement (two
for `page=N`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from counseldesk.appointments import repository
from counseldesk.appointments.models import AppointmentStatus
from counseldesk.appointments.repository import AppointmentFilters, Order
from counseldesk.db.paging import Cursor, encode_cursor
from counseldesk.errors import InvalidInput
from counseldesk.staff.models import Counselor
from tests import query_plans
from tests.factories import make_counselor
from tests.query_plans import Plan

TZ = ZoneInfo("Africa/Nairobi")
APPOINTMENTS = 20_000
COUNSELORS = 40


@dataclass
class Office:
    me: Counselor
    base: datetime  # the first appointment's start


@pytest.fixture
async def office(session: AsyncSession, counselor: Counselor) -> Office:
    """20,000 appointments over ~3 weeks: 40 counselors (one of them `me`), 2,000 students,
    most completed, 5% pending, 5% confirmed, 5% canceled, as an office's history looks."""
    colleagues = [counselor] + [await make_counselor(session) for _ in range(COUNSELORS - 1)]
    await session.execute(
        text(
            """
            INSERT INTO students (telegram_user_id, admission_no, full_name, phone,
                                  year_of_study)
            SELECT 9200000000 + g, 'AP/' || lpad(g::text, 6, '0') || '/2024',
                   'Student ' || g, '+254700000000', 1 + g % 4
            FROM generate_series(0, 1999) g
            """
        )
    )
    base = datetime(2030, 1, 1, 6, tzinfo=UTC)
    # At each hour 40 appointments, one per counselor and each with another student, so
    # neither exclusion constraint is touched.
    await session.execute(
        text(
            """
            INSERT INTO appointments (student_id, counselor_id, starts_at, ends_at, status,
                                      created_at, updated_at)
            SELECT s.id, (CAST(:counselors AS int[]))[1 + g % 40],
                   CAST(:base AS timestamptz) + make_interval(hours => g / 40),
                   CAST(:base AS timestamptz) + make_interval(hours => g / 40, mins => 50),
                   CAST(CASE g % 20 WHEN 0 THEN 'pending' WHEN 1 THEN 'confirmed'
                                    WHEN 2 THEN 'canceled' ELSE 'completed' END
                        AS appointment_status),
                   :base, :base
            FROM generate_series(0, :count - 1) g
            JOIN students s ON s.telegram_user_id = 9200000000 + g % 2000
            """
        ),
        {"counselors": [c.id for c in colleagues], "base": base, "count": APPOINTMENTS},
    )
    for table in ("appointments", "students", "counselors"):
        await session.execute(text(f"ANALYZE {table}"))
    return Office(me=counselor, base=base)


async def _page_plan(
    session: AsyncSession,
    engine: AsyncEngine,
    filters: AppointmentFilters,
    *,
    page: int = 1,
    cursor: str | None = None,
) -> Plan:
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.appointment_page(session, filters, TZ, page=page, cursor=cursor),
    )
    # One statement: the page, its people and the bounded total together.
    [plan] = plans
    assert not plan.unbounded_seq_scans() & {"appointments", "students"}, plan.sql
    return plan


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_appointments_starts"),
        ({"order": Order.DESC}, "ix_appointments_starts"),
        ({"status": AppointmentStatus.PENDING}, "ix_appointments_status_starts"),
        (
            {"status": AppointmentStatus.CONFIRMED, "order": Order.DESC},
            "ix_appointments_status_starts",
        ),
        ({"counselor_id": "me"}, "ix_appointments_counselor_starts"),
        ({"counselor_id": "me", "order": Order.DESC}, "ix_appointments_counselor_starts"),
    ],
)
async def test_each_list_view_walks_its_own_index(
    session: AsyncSession,
    engine: AsyncEngine,
    office: Office,
    filters: dict[str, Any],
    index: str,
) -> None:
    if filters.get("counselor_id") == "me":
        filters["counselor_id"] = office.me.id
    plan = await _page_plan(session, engine, AppointmentFilters(**filters))
    assert index in plan.indexes, (plan.indexes, plan.sql)
    # The students of the page: primary-key lookups (counselors are a handful of rows).
    assert "pk_students" in plan.indexes, plan.indexes


async def test_a_time_range_starts_inside_the_index(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    filters = AppointmentFilters(
        starts_from=office.base + timedelta(days=10), starts_before=office.base + timedelta(days=11)
    )
    plan = await _page_plan(session, engine, filters)
    conditions = [
        n.get("Index Cond", "")
        for n in plan.nodes()
        if n.get("Index Name") == "ix_appointments_starts"
    ]
    assert any("starts_at >=" in c for c in conditions), conditions


async def test_filter_values_reach_the_planner_as_constants(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    plan = await _page_plan(
        session,
        engine,
        AppointmentFilters(status=AppointmentStatus.PENDING, counselor_id=office.me.id),
    )
    assert "appointments.status = 'pending'" in plan.sql
    assert f"appointments.counselor_id = {office.me.id}" in plan.sql


async def test_a_cursor_continues_inside_the_index_at_any_depth(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    filters = AppointmentFilters()
    first = await repository.appointment_page(session, filters, TZ, limit=20)
    second = await repository.appointment_page(session, filters, TZ, cursor=first.next_cursor)
    assert second.page == 2
    assert second.items[0].starts_at >= first.items[-1].starts_at
    assert {a.id for a in first.items}.isdisjoint(a.id for a in second.items)
    plan = await _page_plan(session, engine, filters, cursor=first.next_cursor)
    conditions = [
        n.get("Index Cond", "")
        for n in plan.nodes()
        if n.get("Index Name") == "ix_appointments_starts"
    ]
    assert any("ROW(starts_at, id) >" in c for c in conditions), conditions


async def test_a_page_number_finds_its_first_key_in_the_index(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    filters = AppointmentFilters(counselor_id=office.me.id)
    deep = await repository.appointment_page(session, filters, TZ, page=20, limit=20)
    walked = None
    for _ in range(19):
        walked = await repository.appointment_page(
            session, filters, TZ, limit=20, cursor=walked.next_cursor if walked else None
        )
    assert walked is not None
    following = await repository.appointment_page(
        session, filters, TZ, limit=20, cursor=walked.next_cursor
    )
    assert [a.id for a in deep.items] == [a.id for a in following.items]
    plans = await query_plans.plans(
        session, engine, lambda: repository.appointment_page(session, filters, TZ, page=20)
    )
    # Two statements: page 20's first key, by walking the index's entries, then the page from it.
    anchor, page = plans
    for plan in plans:
        assert not plan.unbounded_seq_scans() & {"appointments", "students"}, plan.sql
        assert "ix_appointments_counselor_starts" in plan.indexes, plan.sql
    assert "JOIN" not in anchor.sql
    starts = [
        n.get("Index Cond", "")
        for n in page.nodes()
        if n.get("Index Name") == "ix_appointments_counselor_starts"
    ]
    assert any("ROW(starts_at, id) >=" in c for c in starts), starts


async def test_large_totals_are_estimates_small_ones_exact(
    session: AsyncSession, office: Office
) -> None:
    everything = await repository.appointment_page(session, AppointmentFilters(), TZ)
    assert everything.total_is_estimate
    # The planner's estimate, not far from the truth after ANALYZE.
    assert APPOINTMENTS * 0.8 <= everything.total <= APPOINTMENTS * 1.2
    day = AppointmentFilters(starts_from=office.base, starts_before=office.base + timedelta(days=1))
    one_day = await repository.appointment_page(session, day, TZ)
    assert (one_day.total, one_day.total_is_estimate) == (24 * COUNSELORS, False)
    mine_pending = AppointmentFilters(status=AppointmentStatus.PENDING, counselor_id=office.me.id)
    page = await repository.appointment_page(session, mine_pending, TZ)
    # Mine are g % 40 == 0, all of them pending (g % 20 == 0).
    assert (page.total, page.total_is_estimate) == (APPOINTMENTS // COUNSELORS, False)


async def test_an_empty_page_still_counts(session: AsyncSession, office: Office) -> None:
    filters = AppointmentFilters(counselor_id=office.me.id, status=AppointmentStatus.CANCELED)
    page = await repository.appointment_page(session, filters, TZ)
    assert page.total == 0 and page.items == []
    beyond = await repository.appointment_page(
        session, AppointmentFilters(counselor_id=office.me.id), TZ, page=1000, limit=100
    )
    assert beyond.items == [] and beyond.total > 0 and not beyond.has_next


def test_fingerprints_tell_every_filter_apart() -> None:
    at = datetime(2030, 3, 4, tzinfo=UTC)
    variants = [
        AppointmentFilters(),
        AppointmentFilters(status=AppointmentStatus.PENDING),
        AppointmentFilters(counselor_id=1),
        AppointmentFilters(student_id=1),
        AppointmentFilters(starts_from=at),
        AppointmentFilters(starts_before=at),
        AppointmentFilters(order=Order.DESC),
    ]
    assert len({f.fingerprint() for f in variants}) == len(variants)
    assert AppointmentFilters(counselor_id=1).fingerprint() == (
        AppointmentFilters(counselor_id=1).fingerprint()
    )


@pytest.mark.parametrize(
    "key",
    [("2030-03-04T10:00:00+00:00",), ("2030-03-04T10:00:00", 1), ("noon", 1), (None, None)],
)
async def test_a_cursor_with_a_bad_key_is_refused(
    session: AsyncSession, key: tuple[Any, ...]
) -> None:
    filters = AppointmentFilters()
    cursor = encode_cursor(Cursor(page=2, key=key, fingerprint=filters.fingerprint()))
    with pytest.raises(InvalidInput, match="damaged"):
        await repository.appointment_page(session, filters, TZ, cursor=cursor)

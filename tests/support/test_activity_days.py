"""The inbox's per-day ticket counts (migration 0006) and the deep `page=N` built on them.

The counts must agree with the tickets after anything that adds, moves or removes one — the
page's first key is read from them — and a page found through them must be the page the plain
OFFSET finds."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from counseldesk.db.paging import find_page_start
from counseldesk.runtime import Runtime
from counseldesk.staff.models import Counselor
from counseldesk.support import repository
from counseldesk.support.maintenance import (
    _COMPACT,
    check_activity_days,
    compact_activity_days,
    recount_activity_days,
)
from counseldesk.support.models import (
    SupportTicket,
    TicketPriority,
    TicketStatus,
)
from counseldesk.support.repository import Assigned, InboxFilters, _Shape
from counseldesk.worker import JOBS, run_job_once
from tests import query_plans
from tests.conftest import asyncpg_dsn, migrated_database
from tests.factories import make_counselor
from tests.support.activity_days import DAYS, KEY, assert_counts_agree, counted_and_actual
from tests.support.inbox_factories import EPOCH, add_message, make_category, make_ticket

# Midnight UTC: tickets just before and at it belong to different days.
MIDNIGHT = EPOCH.replace(hour=0) + timedelta(days=1)
# The first day of the 30-day period MIDNIGHT is in (periods count from 2000-01-01 UTC):
# tickets just before and at it belong to different periods.
PERIOD_START = datetime(2025, 12, 15, tzinfo=UTC)


async def spread_tickets(session: AsyncSession, counselor: Counselor) -> list[SupportTicket]:
    """30 tickets over seven days in three 30-day periods, in every status and priority, two
    categories (and none), assigned to `counselor`, to another counselor or to nobody; with
    shared timestamps and both sides of a midnight and of a period's start (a day's and a
    period's bounds are where an off-by-one would show)."""
    statuses = list(TicketStatus)
    priorities = list(TicketPriority)
    categories = [None, await make_category(session), await make_category(session)]
    assignees = [None, counselor, await make_counselor(session)]
    moments = [
        MIDNIGHT - timedelta(microseconds=1),
        MIDNIGHT,
        MIDNIGHT + timedelta(hours=5),
        MIDNIGHT - timedelta(days=2, hours=3),
        MIDNIGHT + timedelta(days=1, minutes=1),
        PERIOD_START - timedelta(microseconds=1),
        PERIOD_START,
        PERIOD_START - timedelta(days=45),
    ]
    tickets = []
    for i in range(30):
        tickets.append(
            await make_ticket(
                session,
                status=statuses[i % 5],
                priority=priorities[i % 4],
                category=categories[i % 3],
                assignee=assignees[(i // 3) % 3],
                last_activity_at=moments[(i * 7) % len(moments)],
            )
        )
    return tickets


# --- the triggers ---------------------------------------------------------------------------


async def test_new_tickets_are_counted_in_every_view(
    session: AsyncSession, counselor: Counselor
) -> None:
    await spread_tickets(session, counselor)
    await assert_counts_agree(session)


async def test_a_ticket_moving_to_another_day_or_view_is_counted_where_it_is(
    session: AsyncSession, counselor: Counselor
) -> None:
    tickets = await spread_tickets(session, counselor)
    other = await make_category(session)
    # A new message moves its ticket to today; a reply changes its status; a triage changes
    # priority, category and assignee; a change of status, day and period at once.
    await add_message(session, tickets[0], "a new day")
    tickets[1].status = TicketStatus.REPLIED
    tickets[3].priority = TicketPriority.URGENT
    tickets[4].category_id = other.id
    tickets[5].assigned_counselor_id = None
    tickets[6].assigned_counselor_id = counselor.id
    tickets[2].status = TicketStatus.CLOSED
    tickets[2].last_activity_at = PERIOD_START + timedelta(days=31)
    await assert_counts_agree(session)
    # One statement moving many tickets at once.
    await session.execute(
        update(SupportTicket)
        .where(SupportTicket.id.in_([t.id for t in tickets[7:25]]))
        .values(
            status=TicketStatus.RESOLVED,
            last_activity_at=SupportTicket.last_activity_at + timedelta(hours=20),
        )
    )
    await assert_counts_agree(session)


async def test_a_change_that_moves_no_view_adds_no_rows(
    session: AsyncSession,
) -> None:
    ticket = await make_ticket(session, last_activity_at=MIDNIGHT + timedelta(hours=1))
    rows = "SELECT count(*) FROM support_ticket_activity_days"
    before = (await session.execute(text(rows))).scalar_one()
    ticket.last_activity_at = MIDNIGHT + timedelta(hours=23)
    ticket.subject = "Another subject"
    ticket.message_count += 1
    await session.flush()
    assert (await session.execute(text(rows))).scalar_one() == before


async def test_deleted_and_truncated_tickets_are_no_longer_counted(
    session: AsyncSession, counselor: Counselor
) -> None:
    tickets = await spread_tickets(session, counselor)
    await session.execute(
        delete(SupportTicket).where(SupportTicket.id.in_([t.id for t in tickets[:11]]))
    )
    await assert_counts_agree(session)
    await session.execute(text("TRUNCATE support_tickets CASCADE"))
    counted, actual = await counted_and_actual(session)
    assert counted == actual == set()


async def test_compaction_folds_the_rows_and_keeps_the_sums(
    session: AsyncSession, counselor: Counselor
) -> None:
    tickets = await spread_tickets(session, counselor)
    for ticket in tickets[:12]:
        ticket.status = TicketStatus.CLOSED
        await session.flush()
        ticket.last_activity_at += timedelta(days=1)
        await session.flush()
        ticket.last_activity_at -= timedelta(days=1)  # back where it was: nets to zero
        await session.flush()
    assert await compact_activity_days(session) > 0
    await assert_counts_agree(session)
    # One row per view and day, none of them zero.
    duplicates = await session.execute(
        select(*KEY).group_by(*KEY).having(or_(func.count() > 1, func.sum(DAYS.tickets) == 0))
    )
    assert duplicates.all() == []
    assert await compact_activity_days(session) == 0


# --- page=N through the counts ----------------------------------------------------------------

VIEWS: dict[str, dict[str, Any]] = {
    "all": {},
    "open": {"status": TicketStatus.OPEN},
    "closed": {"status": TicketStatus.CLOSED},
    "priority": {"priority": TicketPriority.HIGH},
    "category": {"category_id": "first"},
    "mine": {"assigned": Assigned.MINE},
    "unassigned": {"assigned": Assigned.UNASSIGNED},
    "triage": {"status": TicketStatus.IN_PROGRESS, "priority": TicketPriority.LOW},
    "closed in a category": {"status": TicketStatus.CLOSED, "category_id": "first"},
    "mine in progress": {"status": TicketStatus.IN_PROGRESS, "assigned": Assigned.MINE},
    "urgent unassigned": {"priority": TicketPriority.URGENT, "assigned": Assigned.UNASSIGNED},
    "high in a category": {"priority": TicketPriority.HIGH, "category_id": "first"},
    "mine in a category": {"category_id": "first", "assigned": Assigned.MINE},
}


def view_filters(view: str, tickets: list[SupportTicket]) -> InboxFilters:
    """The filters of VIEWS[view], "first" standing for the first category `tickets` use."""
    arguments = dict(VIEWS[view])
    if arguments.get("category_id") == "first":
        arguments["category_id"] = next(t.category_id for t in tickets if t.category_id)
    return InboxFilters(**arguments)


@pytest.mark.parametrize("view", VIEWS)
async def test_every_offset_finds_the_key_the_index_count_finds(
    session: AsyncSession, counselor: Counselor, view: str
) -> None:
    tickets = await spread_tickets(session, counselor)
    # Rows of -1/+1 from moves, not yet compacted, must add up the same.
    moved = await make_ticket(session, status=TicketStatus.OPEN, last_activity_at=MIDNIGHT)
    moved.status = TicketStatus.CLOSED
    moved.last_activity_at = PERIOD_START - timedelta(days=1)  # another day and period
    await session.flush()

    filters = view_filters(view, tickets)
    shape = _Shape.of(filters, None)
    assert repository._counts_days(shape)
    params = repository._params(filters, counselor.id)
    total = (await repository.ticket_page(session, counselor.id, filters)).total
    assert total > 0
    for offset in range(total + 2):
        by_index = await find(session, repository._anchor_statement(shape), params, offset)
        by_days = await find(session, repository._day_anchor_statement(shape), params, offset)
        assert by_days == by_index, offset
    assert by_days is None  # past the end: nothing, as from the index


async def find(
    session: AsyncSession, statement: Any, params: dict[str, Any], offset: int
) -> tuple[Any, ...] | None:
    found = dict(params)
    if not await find_page_start(session, statement, found, offset):
        return None
    return found["after_at"], found["after_id"]


async def test_a_deep_page_is_read_through_the_counts_and_matches_the_offset_page(
    engine: AsyncEngine,
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await spread_tickets(session, counselor)
    expected = await repository.ticket_page(session, counselor.id, InboxFilters(), page=4, limit=4)
    monkeypatch.setattr(repository, "DAYS_FROM_OFFSET", 10)
    async with query_plans.captured(engine) as sent:
        deep = await repository.ticket_page(session, counselor.id, InboxFilters(), page=4, limit=4)
    assert "support_ticket_activity_days" in sent[0][0]
    assert [t.id for t in deep.items] == [t.id for t in expected.items]
    assert (deep.total, deep.has_next) == (expected.total, expected.has_next)
    # Filters the counts do not cover together still count through their index.
    uncovered = InboxFilters(
        status=TicketStatus.OPEN, priority=TicketPriority.MEDIUM, assigned=Assigned.MINE
    )
    assert not repository._counts_days(_Shape.of(uncovered, None))
    async with query_plans.captured(engine) as sent:
        await repository.ticket_page(session, counselor.id, uncovered, page=4, limit=4)
    assert "support_ticket_activity_days" not in sent[0][0]


async def assert_keys_agree_in_london(
    session: AsyncSession, counselor: Counselor, offsets: int
) -> None:
    """In a session time zone with daylight saving, every offset up to `offsets` finds the same
    key through the counts as through the index."""
    await session.execute(text("SET LOCAL timezone = 'Europe/London'"))
    shape = _Shape.of(InboxFilters(), None)
    params = repository._params(InboxFilters(), counselor.id)
    for offset in range(offsets):
        by_index = await find(session, repository._anchor_statement(shape), params, offset)
        by_days = await find(session, repository._day_anchor_statement(shape), params, offset)
        assert by_days == by_index, offset


async def test_a_session_time_zone_with_daylight_saving_does_not_move_the_days(
    session: AsyncSession, counselor: Counselor
) -> None:
    # Europe/London moves to summer time at 01:00 UTC on 29 March 2026: there that calendar
    # day lasts 23 hours, while the counts' days are always 24.
    day = datetime(2026, 3, 29, tzinfo=UTC)
    for at in (
        day + timedelta(days=1, hours=2),
        day + timedelta(hours=23, minutes=30),
        day + timedelta(hours=22),
        day + timedelta(hours=3),
        day - timedelta(hours=2),
    ):
        await make_ticket(session, last_activity_at=at)
    await assert_keys_agree_in_london(session, counselor, offsets=6)


async def test_a_period_with_a_25_hour_day_in_the_session_time_zone_still_ends_at_720_hours(
    session: AsyncSession, counselor: Counselor
) -> None:
    # Europe/London goes back to winter time on 26 October 2025, inside the period from 16
    # October 00:00 UTC: there 30 calendar days from its start last 721 hours and would take in
    # the next period's first day.
    start = datetime(2025, 10, 16, tzinfo=UTC)
    for at in (
        start + timedelta(days=30, hours=1),
        start + timedelta(days=30) - timedelta(microseconds=1),
        start + timedelta(days=29, hours=2),
        start + timedelta(days=5),
        start + timedelta(hours=1),
        start - timedelta(hours=1),
    ):
        await make_ticket(session, last_activity_at=at)
    await assert_keys_agree_in_london(session, counselor, offsets=8)


# --- writers of the counts at the same time -----------------------------------------------------
#
# Committed data on connections of their own, in a database of their own: one transaction folds
# the counts (the worker's job) while another empties them.


async def _scratch_with_moved_tickets(server_url: str) -> str:
    url = await migrated_database(server_url, "counseldesk_activity_days")
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(
            """
            INSERT INTO students (telegram_user_id, admission_no, full_name, phone, year_of_study)
            VALUES (1, 'AB/1/2024', 'Faith Achieng', '+254700000001', 1);
            INSERT INTO support_tickets (telegram_user_id, student_id, student_name, subject,
                                         last_activity_at)
            SELECT 1, 1, 'Faith Achieng', 'Ticket ' || g,
                   timestamptz '2026-11-20 12:00+00' - g * interval '5 hours'
            FROM generate_series(1, 40) g;
            -- Moves leave -1/+1 rows for the compaction to fold.
            UPDATE support_tickets SET status = 'closed' WHERE id % 2 = 0;
            UPDATE support_tickets SET last_activity_at = last_activity_at + interval '1 day'
            WHERE id % 3 = 0;
            """
        )
    finally:
        await connection.close()
    return url


async def _while_compacting(url: str, other: Callable[[AsyncConnection], Awaitable[Any]]) -> None:
    """`other`, in a transaction of its own, while a compaction has folded the counts but not
    yet committed; then check the counts against the tickets."""
    engine = create_async_engine(url)
    compacting = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await compacting.execute("BEGIN")
        assert await compacting.fetchval(str(_COMPACT)) > 0

        async def in_transaction() -> None:
            async with engine.begin() as conn:
                await other(conn)

        waiting = asyncio.create_task(in_transaction())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # it waits for the compaction
        await compacting.execute("COMMIT")
        await waiting
        async with engine.connect() as conn:
            await assert_counts_agree(conn)
    finally:
        await compacting.close()
        await engine.dispose()


async def test_a_recount_during_a_compaction_counts_each_ticket_once(server_url: str) -> None:
    url = await _scratch_with_moved_tickets(server_url)
    await _while_compacting(url, recount_activity_days)


async def test_truncated_tickets_during_a_compaction_leave_no_counts(server_url: str) -> None:
    url = await _scratch_with_moved_tickets(server_url)

    async def truncate(conn: AsyncConnection) -> None:
        await conn.execute(text("TRUNCATE support_tickets CASCADE"))

    await _while_compacting(url, truncate)


@pytest.mark.parametrize("view", ["all", "closed", "mine in a category", "unassigned"])
async def test_the_days_are_read_in_index_order_without_a_sort(
    session: AsyncSession,
    engine: AsyncEngine,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
    view: str,
) -> None:
    # On a table this small PostgreSQL would rather read it whole; with those paths off, the
    # plan shows whether the index's order serves the running sum as it does on a big desk.
    tickets = await spread_tickets(session, counselor)
    filters = view_filters(view, tickets)
    monkeypatch.setattr(repository, "DAYS_FROM_OFFSET", 1)
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    await session.execute(text("SET LOCAL enable_bitmapscan = off"))
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.ticket_page(session, counselor.id, filters, page=2, limit=2),
    )
    [anchor] = [p for p in plans if "support_ticket_activity_days" in p.sql]
    # No sort over the counts' rows. (The ticket inside the day may be read through a sort on a
    # table this small: PostgreSQL 16 sorts there rather than scan backwards.)
    sorted_counts = [
        node
        for node in anchor.nodes()
        if node["Node Type"] in {"Sort", "Incremental Sort"}
        and "support_ticket_activity_days" in json.dumps(node)
    ]
    assert not sorted_counts, json.dumps(sorted_counts, indent=1)[:6000]
    assert anchor.scans_of("support_ticket_activity_days") == {"Index Only Scan"}


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_hourly_check_tells_the_operator_when_the_counts_do_not_add_up(
    runtime: Runtime,
    session: AsyncSession,
    counselor: Counselor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    [job] = [job for job in JOBS if job.name == "check-activity-days"]
    assert job.every_seconds == 3600
    tickets = await spread_tickets(session, counselor)
    await session.flush()
    assert await check_activity_days(session) == 0
    assert not _errors(caplog)
    # Tickets loaded around the triggers (as with session_replication_role = replica and no
    # recount): the tickets are more than the counts say.
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(
        text(
            "INSERT INTO support_tickets (telegram_user_id, student_id, student_name, subject) "
            "SELECT telegram_user_id, student_id, student_name, 'Loaded' FROM support_tickets "
            "WHERE id = :id"
        ),
        {"id": tickets[0].id},
    )
    await session.execute(text("SET LOCAL session_replication_role = origin"))
    assert await check_activity_days(session) == 1
    [error] = _errors(caplog)
    assert "31 tickets, 30 counted by day, 30 by 30-day period" in error
    assert "counseldesk recount-inbox-days" in error
    # The recount makes them add up again.
    caplog.clear()
    await recount_activity_days(session)
    assert await check_activity_days(session) == 0
    # A hand edit of one span only.
    await session.execute(
        text(
            "INSERT INTO support_ticket_activity_days (grouping, day, tickets) "
            "SELECT 31, max(day), 3 FROM support_ticket_activity_days WHERE grouping = 31"
        )
    )
    assert await check_activity_days(session) == 1
    assert "31 tickets, 31 counted by day, 34 by 30-day period" in _errors(caplog)[0]


async def test_the_worker_folds_the_counts_every_minute(
    runtime: Runtime, session: AsyncSession, counselor: Counselor
) -> None:
    [job] = [job for job in JOBS if job.name == "compact-activity-days"]
    assert job.every_seconds == 60
    tickets = await spread_tickets(session, counselor)
    for ticket in tickets[:5]:
        ticket.status = TicketStatus.REPLIED
    await session.flush()
    assert await run_job_once(runtime, job)
    await assert_counts_agree(session)
    assert await run_job_once(runtime, job) == 0  # nothing left to fold


async def test_the_counts_are_vacuumed_often_enough_for_index_only_scans(
    session: AsyncSession,
) -> None:
    # The default (20% of the table) would leave the visibility map stale for tens of thousands
    # of folded rows on a large desk; the reader's index-only scan then visits the heap.
    options = await session.scalar(
        text("SELECT reloptions FROM pg_class WHERE relname = 'support_ticket_activity_days'")
    )
    assert {
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=1000",
        "autovacuum_vacuum_insert_scale_factor=0",
        "autovacuum_vacuum_insert_threshold=1000",
    } <= set(options)

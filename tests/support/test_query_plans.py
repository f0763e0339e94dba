"""Each hot query of the inbox and the chat uses the index it was built for.

The plans are PostgreSQL's own choices on realistic statistics: a few thousand tickets with the
skew a real office has (most closed, few urgent, one small category, one counselor's share),
tens of thousands of messages, ANALYZE run inside the test's transaction — no planner switches
turned off. The statements are exactly the ones the repository sends (captured at the driver),
EXPLAINed with their parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from counseldesk.db import paging
from counseldesk.db.records import render
from counseldesk.staff.models import Counselor
from counseldesk.support import repository
from counseldesk.support.models import NAME_WORD_PLACES, TicketPriority, TicketStatus
from counseldesk.support.repository import Assigned, InboxFilters
from tests import query_plans
from tests.factories import make_counselor
from tests.query_plans import Plan
from tests.support.inbox_factories import make_category

TICKETS = 3000
MESSAGES_PER_TICKET = 4


@dataclass
class Office:
    me: Counselor
    rare_category: int
    busy_ticket: int


@pytest.fixture
async def office(session: AsyncSession, counselor: Counselor) -> Office:
    colleagues = [await make_counselor(session) for _ in range(4)]
    common = [(await make_category(session)).id for _ in range(4)]
    rare = (await make_category(session)).id
    await session.execute(
        text(
            """
            INSERT INTO students (telegram_user_id, admission_no, full_name, phone,
                                  year_of_study)
            SELECT 9100000000 + g, 'QP/' || lpad(g::text, 6, '0') || '/2024',
                   (ARRAY['Faith','Kevin','Lucy','Samuel','Ruth','Brian','Grace','Dennis'])
                       [1 + g % 8] || ' ' ||
                   (ARRAY['Achieng','Mutua','Otieno','Kamau','Wanjiku','Kiptoo'])[1 + g % 6],
                   '+254700000000', 1 + g % 4
            FROM generate_series(1, 2000) g
            """
        )
    )
    # Most tickets closed, 2% open (mostly unassigned), 2% urgent, 1% in the rare category,
    # 1% assigned to `me`; activity spread over a year.
    await session.execute(
        text(
            """
            INSERT INTO support_tickets (telegram_user_id, student_id, student_name,
                category_id, subject, status, priority, assigned_counselor_id, created_at,
                last_activity_at, last_message_preview, last_sender_type, message_count)
            SELECT s.telegram_user_id, s.id, s.full_name,
                   CASE WHEN g % 100 = 0 THEN :rare
                        ELSE (CAST(:common AS smallint[]))[1 + g % 4] END,
                   (ARRAY['Exam stress','Fees balance','Feeling low','Internship'])[1 + g % 4]
                       || ' ' || g,
                   CAST(CASE WHEN g % 50 = 1 THEN 'open' WHEN g % 50 = 2 THEN 'in_progress'
                             WHEN g % 10 = 3 THEN 'resolved' ELSE 'closed' END
                        AS ticket_status),
                   CAST(CASE WHEN g % 50 = 7 THEN 'urgent' WHEN g % 5 = 0 THEN 'high'
                             ELSE 'medium' END AS ticket_priority),
                   CASE WHEN g % 50 = 1 THEN NULL
                        WHEN g % 100 = 5 THEN :me
                        ELSE (CAST(:colleagues AS int[]))[1 + g % 4] END,
                   now() - make_interval(mins => g * 90),
                   now() - make_interval(mins => g * 90 - 30),
                   'preview', 'student', :per_ticket
            FROM generate_series(1, :tickets) g
            JOIN students s ON s.telegram_user_id = 9100000000 + 1 + g % 2000
            """
        ),
        {
            "rare": rare,
            "common": common,
            "me": counselor.id,
            "colleagues": [c.id for c in colleagues],
            "tickets": TICKETS,
            "per_ticket": MESSAGES_PER_TICKET,
        },
    )
    await session.execute(
        text(
            """
            INSERT INTO support_messages (ticket_id, telegram_user_id, sender_type,
                                          counselor_id, body, created_at)
            SELECT t.id, t.telegram_user_id,
                   CAST(CASE WHEN k % 2 = 1 THEN 'student' ELSE 'counselor' END AS sender_type),
                   CASE WHEN k % 2 = 0 THEN t.assigned_counselor_id END,
                   (ARRAY['I cannot sleep before exams', 'my fees are not paid',
                          'thank you for the advice', 'can we meet on Monday'])
                       [1 + (t.id - first.id + k) % 4]
                       || CASE WHEN (t.id - first.id) % 997 = 0 THEN ' zygomorphic' ELSE '' END,
                   t.created_at + make_interval(mins => k)
            -- Numbered from this office's first ticket, not by id: ids depend on how many
            -- tickets earlier tests made (sequences do not roll back), and the plans on what
            -- the words match.
            FROM support_tickets t,
                 (SELECT min(id) AS id FROM support_tickets
                  WHERE telegram_user_id >= 9100000000) AS first,
                 generate_series(1, :per_ticket) k
            WHERE t.telegram_user_id >= 9100000000
            """
        ),
        {"per_ticket": MESSAGES_PER_TICKET},
    )
    # Every counselor reply has its outbox row, as replies of the last year do.
    await session.execute(
        text(
            """
            WITH sent AS (
                INSERT INTO notifications (kind, telegram_user_id, payload, status, sent_at)
                SELECT 'support_reply', m.telegram_user_id,
                       jsonb_build_object('message_id', m.id), 'sent', now()
                FROM support_messages m
                WHERE m.sender_type = 'counselor' AND m.telegram_user_id >= 9100000000
                RETURNING id, (payload->>'message_id')::bigint AS message_id
            )
            UPDATE support_messages m SET notification_id = sent.id
            FROM sent WHERE m.id = sent.message_id
            """
        )
    )
    await session.execute(
        text(
            "UPDATE support_tickets t SET last_student_message_id = "
            "(SELECT max(id) FROM support_messages m WHERE m.ticket_id = t.id "
            "AND m.sender_type = 'student') WHERE t.telegram_user_id >= 9100000000"
        )
    )
    # One long conversation, as chat pages see them.
    busy = await session.scalar(
        text("SELECT min(id) FROM support_tickets WHERE telegram_user_id >= 9100000000")
    )
    await session.execute(
        text(
            """
            INSERT INTO support_messages (ticket_id, telegram_user_id, sender_type, body)
            SELECT :busy, 9100000001, 'student', 'more ' || k FROM generate_series(1, 3000) k
            """
        ),
        {"busy": busy},
    )
    # Earlier tests' rolled-back rows leave their index pages behind (a GIN index keeps them),
    # so late in a run the full-text indexes looked many times their size to the planner, and on
    # these 3,000 tickets a table scan became the cheaper plan. Rebuilt here, they are the
    # size of this data, whatever ran before.
    for table in ("students", "support_tickets", "support_messages"):
        await session.execute(text(f"REINDEX TABLE {table}"))
    for table in (
        "students",
        "support_tickets",
        "support_messages",
        "support_ticket_reads",
        "notifications",
        "support_categories",
        "counselors",
    ):
        await session.execute(text(f"ANALYZE {table}"))
    paging.forget_estimates()
    return Office(me=counselor, rare_category=rare, busy_ticket=int(busy or 0))


BIG_TABLES = ("support_tickets", "support_messages", "students", "notifications")


def _no_table_scans(plans: list[Plan]) -> None:
    for plan in plans:
        scanned = plan.unbounded_seq_scans() & set(BIG_TABLES)
        assert not scanned, (scanned, plan.sql)


async def _inbox_plan(
    session: AsyncSession, engine: AsyncEngine, office: Office, **kwargs: Any
) -> Plan:
    cursor = kwargs.pop("cursor", None)
    page = kwargs.pop("page", 1)
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.ticket_page(
            session, office.me.id, InboxFilters(**kwargs), page=page, cursor=cursor
        ),
    )
    _no_table_scans(plans)
    return plans[0]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_support_tickets_activity"),
        ({"status": TicketStatus.OPEN}, "ix_support_tickets_status_activity"),
        ({"priority": TicketPriority.URGENT}, "ix_support_tickets_priority_activity"),
        (
            {"status": TicketStatus.OPEN, "priority": TicketPriority.URGENT},
            "ix_support_tickets_status_priority_activity",
        ),
        ({"category_id": "rare"}, "ix_support_tickets_category_activity"),
        ({"assigned": Assigned.MINE}, "ix_support_tickets_assignee_activity"),
        ({"assigned": Assigned.UNASSIGNED}, "ix_support_tickets_unassigned_activity"),
    ],
)
async def test_each_inbox_view_walks_its_own_index(
    session: AsyncSession,
    engine: AsyncEngine,
    office: Office,
    filters: dict[str, Any],
    index: str,
) -> None:
    if filters.get("category_id") == "rare":
        filters["category_id"] = office.rare_category
    plan = await _inbox_plan(session, engine, office, **filters)
    assert index in plan.indexes, (plan.indexes, plan.sql)
    # The viewer's unread counts: index-only on (ticket_id, id DESC) INCLUDE (sender_type).
    assert "ix_support_messages_ticket_id" in plan.indexes
    assert "pk_students" in plan.indexes


async def test_filter_values_reach_the_planner_as_constants(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    plan = await _inbox_plan(session, engine, office, status=TicketStatus.OPEN)
    assert "support_tickets.status = 'open'" in plan.sql


async def test_a_cursor_starts_inside_the_index(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    first = await repository.ticket_page(session, office.me.id, InboxFilters())
    plan = await _inbox_plan(session, engine, office, cursor=first.next_cursor)
    conditions = [
        n.get("Index Cond", "")
        for n in plan.nodes()
        if n.get("Index Name") == "ix_support_tickets_activity"
    ]
    assert any("ROW(last_activity_at, id) <" in c for c in conditions), conditions


async def test_a_page_number_finds_its_key_in_the_index_then_reads_from_it(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.ticket_page(session, office.me.id, InboxFilters(), page=20),
    )
    _no_table_scans(plans)
    anchor, page = plans
    # The anchor: page 20's first key, by skipping entries of the index (only its columns read).
    walked = [n for n in anchor.nodes() if n.get("Index Name") == "ix_support_tickets_activity"]
    assert walked, anchor.sql
    assert {n["Node Type"] for n in walked} == {"Index Only Scan"}
    assert "support_tickets_1" not in anchor.sql and "JOIN" not in anchor.sql
    # The page: from that key on, inside the same index, like a cursor.
    conditions = [
        n.get("Index Cond", "")
        for n in page.nodes()
        if n.get("Index Name") == "ix_support_tickets_activity"
    ]
    assert any("ROW(last_activity_at, id) <=" in c for c in conditions), conditions


async def test_a_rare_search_term_is_looked_up_in_every_full_text_index(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.ticket_page(session, office.me.id, InboxFilters(q="zygomorphic")),
    )
    _no_table_scans(plans)
    used = set().union(*(p.indexes for p in plans))
    assert {
        "ix_support_tickets_subject_fts",
        "ix_support_tickets_student_name_fts",
        "ix_students_admission_no_prefix",
        "ix_support_messages_body_vector",
    } <= used, used


async def test_a_walked_name_search_tests_each_ticket_without_reading_all_matching_students(
    session: AsyncSession,
    engine: AsyncEngine,
    office: Office,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)  # walk, as for a common name
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.ticket_page(session, office.me.id, InboxFilters(q="Faith Achieng")),
    )
    _no_table_scans(plans)
    # The walk finds the page's ids in a statement of its own; the page reads them.
    walked, page = plans
    # The name is tested on the ticket's own row while walking the activity index; students
    # are read only for the page's rows, by primary key.
    assert "ix_support_tickets_activity" in walked.indexes, walked.indexes
    assert not {"students", "support_categories"} & {n.get("Relation Name") for n in walked.nodes()}
    assert "ix_students_full_name_fts" not in page.indexes, page.indexes
    student_scans = {
        n.get("Index Name") for n in page.nodes() if n.get("Relation Name") == "students"
    }
    assert student_scans == {"pk_students"}, student_scans
    # Each walked ticket is tested on its stored vectors (migration 0007), not by computing
    # to_tsvector of its subject and name.
    walk = [n for n in walked.nodes() if n.get("Index Name") == "ix_support_tickets_activity"]
    assert "name_vector @@" in walk[0]["Filter"], walk[0]["Filter"]
    assert "to_tsvector('simple'::regconfig, (student_name)" not in walk[0]["Filter"]
    # And its messages on theirs (migration 0008), whichever way the planner looks them up.
    message_tests = [
        n.get("Filter", "") + n.get("Index Cond", "") + n.get("Recheck Cond", "")
        for n in walked.nodes()
        if n.get("Relation Name") == "support_messages" or "body" in n.get("Index Name", "")
    ]
    assert any("body_vector @@" in t for t in message_tests), message_tests
    assert not any("to_tsvector" in t for t in message_tests), message_tests


async def test_a_chat_page_reads_the_ticket_index_and_joins_by_key(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    for kwargs in ({}, {"page": 20}, {"before": 10**12}):
        plans = await query_plans.plans(
            session,
            engine,
            lambda kwargs=kwargs: repository.message_page(  # type: ignore[misc]
                session, office.busy_ticket, **kwargs
            ),
        )
        _no_table_scans(plans)
        [plan] = plans
        assert "ix_support_messages_ticket_id" in plan.indexes, (kwargs, plan.indexes)
        assert "pk_support_tickets" in plan.indexes


async def test_a_full_name_is_looked_up_by_its_word_pair_and_paged_in_one_statement(
    session: AsyncSession, engine: AsyncEngine, office: Office
) -> None:
    plans = await query_plans.plans(
        session,
        engine,
        lambda: repository.ticket_page(session, office.me.id, InboxFilters(q="Faith Achieng")),
    )
    _no_table_scans(plans)
    # One statement collects every source's matches with their last activity, cuts the page
    # from them and reads only its rows by id.
    [page] = plans
    assert "ix_support_tickets_name_pairs" in page.indexes, page.indexes
    assert "ix_support_tickets_student_name_fts" not in page.indexes, page.indexes
    assert "pk_support_tickets" in page.indexes, page.indexes


def _literal(value: Any) -> str:
    """A test's own value (a number, a moment, text, or a list of them) written as SQL."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(item) for item in value) + "]" if value else "'{}'"
    assert isinstance(value, str), value
    return "'" + value.replace("'", "''") + "'"


async def _kept_plan(session: AsyncSession, statement: Any, params: dict[str, Any]) -> Plan:
    """The plan PostgreSQL keeps for `statement` (its "generic" plan, made without the values),
    as the repository runs it under plan_cache_mode = force_generic_plan."""
    connection = await session.connection()
    sql, arguments = render(statement, connection.dialect, params)
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.execute("PREPARE kept AS " + sql)
    try:
        await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        # EXPLAIN EXECUTE takes no parameters: the values go in as literals.
        values = ", ".join(_literal(argument) for argument in arguments)
        explained = await driver.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE kept({values})")
    finally:
        await driver.execute("DEALLOCATE kept")
    # JSON arrives decoded where SQLAlchemy installed its codec on the connection.
    tree = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    return Plan(sql, tree)


@pytest.mark.parametrize("term", ["zygomorphic", "Faith Achieng", "LW/10"])
async def test_the_collections_kept_plan_reads_every_source_by_its_index(
    session: AsyncSession, office: Office, term: str
) -> None:
    # The collection runs with its kept ("generic") plan, made without the term's values
    # (support/repository.py, _SEARCH_SETTINGS). That plan must still look each source up
    # in its index: a table scan there would read every message for a term that matches none.
    search = repository._Search.of(term)
    statements = repository._search_statements(search, repository.SEARCH_COLLECT_CAP)
    params = repository._Search.params(term)
    cap = repository.SEARCH_COLLECT_CAP
    in_page = {**params, "offset": 0, "me": office.me.id}
    collections = [
        (statements.collect, params, True),  # with other filters
        (repository._collected_page_statement(search, cap, False, 20), in_page, True),
    ]
    if search.word:  # listed by name word: the other sources only
        listed = repository._name_word_page_statement(search, cap, False, 20)
        collections.append((listed, in_page, False))
    for collection, values, names in collections:
        plan = await _kept_plan(session, collection, values)
        scans = {"Bitmap Heap Scan"}
        if collection is not statements.collect:  # a page's unread counts: (ticket_id, id)
            scans.add("Index Only Scan")
        assert not plan.scans_of("support_messages") - scans, plan.tree
        assert "Seq Scan" not in plan.scans_of("support_tickets"), plan.tree
        assert "ix_support_messages_body_vector" in plan.indexes, plan.indexes
        expected = {"ix_support_tickets_subject_fts"}
        if names:
            expected.add(
                "ix_support_tickets_name_pairs"
                if search.pairs
                else "ix_support_tickets_student_name_fts"
            )
        if search.admission:
            expected.add("ix_students_admission_no_prefix")
        assert expected <= plan.indexes, plan.indexes


@pytest.mark.parametrize("after", [False, True])
async def test_a_common_name_words_kept_plan_reads_the_name_word_indexes_in_order(
    session: AsyncSession, office: Office, after: bool
) -> None:
    # A first name on every eighth ticket: listed by word, not collected (SearchMode.NAME_WORD).
    # The kept plan reads each name-word index from the newest activity on, and stops.
    search = repository._Search.of("Faith")
    statement = repository._name_word_page_statement(
        search, repository.SEARCH_COLLECT_CAP, after, 20
    )
    params: dict[str, Any] = {**repository._Search.params("Faith"), "offset": 0, "me": office.me.id}
    if after:
        params.update(after_at=datetime.now(UTC), after_id=10**12)
    plan = await _kept_plan(session, statement, params)
    assert "Seq Scan" not in plan.scans_of("support_tickets"), plan.tree
    places = range(1, NAME_WORD_PLACES + 1)
    assert {f"ix_support_tickets_name_word_{place}" for place in places} <= plan.indexes
    assert "ix_support_tickets_long_name_activity" in plan.indexes, plan.indexes
    # Each list is read in index order and cut at the page's reach (a Limit right above its
    # scan): no list is read whole, as collecting a common name's tickets would.
    listed = [
        (parent["Node Type"], child["Node Type"])
        for parent in plan.nodes()
        for child in parent.get("Plans", [])
        if "name_word" in child.get("Index Name", "") or "long_name" in child.get("Index Name", "")
    ]
    assert listed == [("Limit", "Index Scan")] * (NAME_WORD_PLACES + 1), listed
    # The other sources, collected in the same statement, from their own indexes.
    assert "Seq Scan" not in plan.scans_of("support_messages"), plan.tree
    assert "ix_support_messages_body_vector" in plan.indexes, plan.indexes

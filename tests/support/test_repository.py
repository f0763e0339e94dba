"""The inbox and chat queries below the HTTP layer: cursors, totals (exact and estimated),
the choice between the two ways of searching, and the statement cache."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from counseldesk.db import paging
from counseldesk.db.paging import Cursor, decode_cursor, encode_cursor
from counseldesk.errors import InvalidInput, NotFound
from counseldesk.staff.models import Counselor
from counseldesk.support import repository
from counseldesk.support.models import SenderType, TicketStatus
from counseldesk.support.repository import (
    Assigned,
    InboxFilters,
    SearchMode,
    _Position,
    _Shape,
)
from counseldesk.telegram.models import NotificationStatus
from tests import query_plans
from tests.factories import make_student
from tests.support.inbox_factories import add_message, make_ticket

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


# --- cursors ----------------------------------------------------------------------------------


def test_a_cursor_round_trips() -> None:
    cursor = Cursor(page=7, key=(AT.isoformat(), 42), fingerprint="abc")
    assert decode_cursor(encode_cursor(cursor), "abc") == Cursor(
        page=7, key=(AT.isoformat(), 42), fingerprint="abc"
    )


def test_a_cursor_is_opaque_url_safe_text() -> None:
    value = encode_cursor(Cursor(page=2, key=(AT, 1), fingerprint="f"))
    assert value.replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v[:-1],
        lambda v: "A" + v[1:] if v[0] != "A" else "B" + v[1:],
        lambda v: v + "AAAA",
        lambda v: "",
        lambda v: "!!!!",
        # Well-formed JSON written by hand: no valid checksum.
        lambda v: base64.urlsafe_b64encode(
            json.dumps({"p": 2, "k": [AT.isoformat(), 1], "f": "f"}).encode() + b"123456"
        ).decode(),
    ],
)
def test_a_damaged_cursor_is_refused(damage: object) -> None:
    value = encode_cursor(Cursor(page=2, key=(AT, 1), fingerprint="f"))
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(damage(value), "f")  # type: ignore[operator]


def test_a_cursor_of_other_filters_is_refused() -> None:
    value = encode_cursor(Cursor(page=2, key=(AT, 1), fingerprint="open"))
    with pytest.raises(InvalidInput, match="other filters"):
        decode_cursor(value, "closed")


def test_filters_have_distinct_fingerprints() -> None:
    prints = {
        InboxFilters().fingerprint(),
        InboxFilters(status=TicketStatus.OPEN).fingerprint(),
        InboxFilters(assigned=Assigned.MINE).fingerprint(),
        InboxFilters(category_id=1).fingerprint(),
        InboxFilters(q="exam").fingerprint(),
        InboxFilters(q="exams").fingerprint(),
    }
    assert len(prints) == 6


def test_search_text_is_trimmed_and_bounded() -> None:
    assert repository.clean_query("  exam \t stress ") == "exam stress"
    assert repository.clean_query("   ") is None
    with pytest.raises(InvalidInput):
        repository.clean_query("x" * 201)


# --- totals ---------------------------------------------------------------------------------


async def test_small_totals_are_exact_large_ones_estimated(
    session: AsyncSession, counselor: Counselor, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        await make_ticket(session)
    exact = await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert (exact.total, exact.total_is_estimate) == (5, False)

    monkeypatch.setattr(repository, "EXACT_COUNT_LIMIT", 3)
    estimated = await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert estimated.total_is_estimate is True
    assert estimated.total >= 4  # never below what was counted
    assert [t.id for t in estimated.items] == [t.id for t in exact.items]


async def test_a_filter_known_to_be_large_is_not_counted_again_while_its_estimate_lasts(
    engine: AsyncEngine,
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(5):
        await make_ticket(session)
    # Built (and cached) with the real limit first, as in a running server; only the check of
    # the count against the limit sees the patched value.
    exact = await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert exact.total_is_estimate is False
    monkeypatch.setattr(repository, "EXACT_COUNT_LIMIT", 3)
    first = await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert first.total_is_estimate is True

    async with query_plans.captured(engine) as sent:
        again = await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert (again.total, again.total_is_estimate) == (first.total, True)
    assert [t.id for t in again.items] == [t.id for t in first.items]
    [(page_sql, _)] = sent
    assert "bounded_total" not in page_sql

    # Once the estimate is forgotten (a minute later), the next page counts again.
    paging.forget_estimates()
    async with query_plans.captured(engine) as sent:
        await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert "bounded_total" in sent[0][0]

    # Once it expires, the request that counts again also remembers the estimate again, fresh
    # for another minute: the others meanwhile kept the old one, and nobody counts after them.
    now = time.monotonic()
    monkeypatch.setattr(paging, "_clock", lambda: now + paging.ESTIMATE_TTL_SECONDS + 1)
    async with query_plans.captured(engine) as sent:
        await repository.ticket_page(session, counselor.id, InboxFilters(), limit=2)
    assert "bounded_total" in sent[0][0]
    monkeypatch.setattr(paging, "_clock", lambda: now + paging.ESTIMATE_TTL_SECONDS + 30)
    async with query_plans.captured(engine) as sent:
        after_the_grace = await repository.ticket_page(
            session, counselor.id, InboxFilters(), limit=2
        )
    assert after_the_grace.total_is_estimate is True
    assert "bounded_total" not in sent[0][0]


async def test_an_empty_page_still_knows_the_total(
    session: AsyncSession, counselor: Counselor
) -> None:
    for _ in range(3):
        await make_ticket(session)
    page = await repository.ticket_page(session, counselor.id, InboxFilters(), page=9)
    assert (page.items, page.total, page.has_next, page.page) == ([], 3, False, 9)


async def test_an_unknown_ticket_is_not_found(session: AsyncSession, counselor: Counselor) -> None:
    with pytest.raises(NotFound):
        await repository.get_ticket_view(session, 987654321, counselor.id)
    with pytest.raises(NotFound):
        await repository.message_page(session, 987654321)
    with pytest.raises(NotFound):
        await repository.get_message_view(session, 987654321)


# --- search: collect or walk -----------------------------------------------------------------


async def test_a_rare_term_is_collected_with_an_exact_total(
    session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    await add_message(session, ticket, "my landlord again")
    mode, _, matched = await repository._search_mode(session, "landlord")
    assert (mode, matched) == (SearchMode.COLLECT, [ticket.id])
    # Without other filters the page's own statement collects instead.
    mode, _, matched = await repository._search_mode(session, "landlord", in_page=True)
    assert (mode, matched) == (SearchMode.COLLECT, None)
    page = await repository.ticket_page(session, counselor.id, InboxFilters(q="landlord"))
    assert ([t.id for t in page.items], page.total, page.total_is_estimate) == (
        [ticket.id],
        1,
        False,
    )


async def test_a_collected_term_is_counted_by_its_ids_unless_another_filter_narrows_it(
    engine: AsyncEngine, session: AsyncSession, counselor: Counselor
) -> None:
    for i in range(3):
        status = TicketStatus.OPEN if i else TicketStatus.CLOSED
        await add_message(session, await make_ticket(session, status=status), "landlord")
    async with query_plans.captured(engine) as sent:
        page = await repository.ticket_page(session, counselor.id, InboxFilters(q="landlord"))
    assert (page.total, page.total_is_estimate) == (3, False)
    # The collected ids are the matches: the page does not count them again.
    assert not [sql for sql, _ in sent if "bounded_total" in sql], sent
    narrowed = InboxFilters(q="landlord", status=TicketStatus.OPEN)
    async with query_plans.captured(engine) as sent:
        page = await repository.ticket_page(session, counselor.id, narrowed)
    assert (page.total, page.total_is_estimate) == (2, False)
    assert [sql for sql, _ in sent if "bounded_total" in sql], sent


async def test_a_term_with_more_matches_than_the_cap_is_walked(
    engine: AsyncEngine,
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tickets = [await make_ticket(session, subject=f"Fees problem {i}") for i in range(3)]
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 2)
    mode, _, matched = await repository._search_mode(session, "fees")
    assert (mode, matched) == (SearchMode.WALK, None)
    # Within the next minute the term is walked without collecting it again.
    async with query_plans.captured(engine) as sent:
        page = await repository.ticket_page(session, counselor.id, InboxFilters(q="fees"))
    assert [t.id for t in page.items] == [t.id for t in reversed(tickets)]
    # An estimate, and at least the 3 (cap + 1) that collecting found.
    assert page.total_is_estimate is True
    assert page.total >= 3
    # Collecting reads the GIN indexes, on the text's to_tsvector; walking tests stored vectors.
    assert not [sql for sql, _ in sent if "to_tsvector(" in sql], sent
    paging.forget_estimates()
    async with query_plans.captured(engine) as sent:
        await repository.ticket_page(session, counselor.id, InboxFilters(q="fees"))
    assert [sql for sql, _ in sent if "to_tsvector(" in sql], sent


async def test_a_page_past_the_cap_is_walked_even_if_nothing_is_remembered(
    session: AsyncSession, counselor: Counselor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's own statement finds a source past the cap and says to walk; that holds even
    # when what it remembered is gone by the time the page is asked for again (the estimates
    # are cleared at 10,000 terms).
    tickets = [await make_ticket(session, subject=f"Fees problem {i}") for i in range(3)]
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 2)
    monkeypatch.setattr(repository, "remember_estimate", lambda _key, _rows: None)
    page = await repository.ticket_page(session, counselor.id, InboxFilters(q="fees"))
    assert [t.id for t in page.items] == [t.id for t in reversed(tickets)]
    assert page.total_is_estimate is True
    mode, _, _ = await repository._search_mode(session, "fees")
    assert mode is SearchMode.WALK


async def test_a_collected_term_finds_each_ticket_once_whatever_the_cap_was_before(
    session: AsyncSession, counselor: Counselor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by message text only, two messages a ticket: more rows than tickets.
    tickets = [await make_ticket(session, subject=f"Room {i}") for i in range(4)]
    for ticket in tickets:
        await add_message(session, ticket, "the hostel again")
        await add_message(session, ticket, "hostel water is off")
    # A smaller cap first (its statement is cached), then the real one: no ids may go missing.
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 2)
    assert (await repository._search_mode(session, "hostel"))[0] is SearchMode.WALK
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 1_000)
    mode, _, matched = await repository._search_mode(session, "hostel")
    assert (mode, matched) == (SearchMode.COLLECT, sorted(t.id for t in tickets))
    page = await repository.ticket_page(session, counselor.id, InboxFilters(q="hostel"))
    assert [t.id for t in page.items] == [t.id for t in reversed(tickets)]
    assert (page.total, page.total_is_estimate) == (4, False)


@pytest.mark.parametrize(
    ("walk_above", "cap"),
    [
        (10**12, 2_000),  # collected
        (-1, 2_000),  # known common: walked at once
        (10**12, 0),  # collected past the cap, then walked
    ],
)
async def test_every_search_statement_keeps_its_plan_and_only_the_walk_has_the_term(
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
    walk_above: int,
    cap: int,
) -> None:
    # The walk must be planned for the term (whether to hash a source's matches or probe each
    # ticket depends on how common the term is): its SQL holds the term, so the plan it keeps
    # is that term's. The collection keeps one plan, its index scans, as does the page that
    # reads the ids either found: the same statements for any term.
    await add_message(session, await make_ticket(session), "my landlord again")
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", walk_above)
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", cap)
    plans = text("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
    # Counted from here: the tests share a connection, and its statements' earlier plans.
    before = {sql: (g, c) for sql, g, c in (await session.execute(plans)).all()}
    for _ in range(7):  # PostgreSQL may choose a kept plan from the sixth execution on
        page = await repository.ticket_page(session, counselor.id, InboxFilters(q="landlord"))
        assert len(page.items) == 1
    setting = await session.execute(text("SELECT current_setting('plan_cache_mode')"))
    assert setting.scalar_one() == "force_generic_plan"
    planned = [
        (sql, g - before.get(sql, (0, 0))[0], c - before.get(sql, (0, 0))[1])
        for sql, g, c in (await session.execute(plans)).all()
        if not sql.startswith("EXPLAIN")  # the estimate: planned for its values in any mode
    ]
    planned = [(sql, g, c) for sql, g, c in planned if g + c]  # run in this test
    assert all(custom == 0 for _, _, custom in planned), planned
    walks = [sql for sql, _, _ in planned if "@@" in sql and "EXISTS" in sql]
    assert [sql for sql, _, _ in planned if "'landlord'" in sql] == walks
    collections = [sql for sql, _, _ in planned if "@@" in sql and "EXISTS" not in sql]
    assert (bool(collections), bool(walks)) == {
        (10**12, 2_000): (True, False),
        (-1, 2_000): (False, True),
        (10**12, 0): (True, True),
    }[(walk_above, cap)]
    # A walk's page is read by one statement for every term (a collected term's page is read
    # by the collection's own statement).
    by_ids = "support_tickets.id = ANY"
    reads_the_ids = [sql for sql, _, _ in planned if by_ids in sql and "@@" not in sql]
    assert bool(reads_the_ids) == bool(walks), planned


async def test_a_walked_term_is_quoted_whatever_it_holds(
    session: AsyncSession, counselor: Counselor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The walk has the term written into its SQL: quotes, backslashes, SQL and other scripts
    # are matched as text, as the bound term of a collection would be.
    ticket = await make_ticket(session)
    await add_message(session, ticket, "my landlord's flat; O'Brien said \\ no to Mosés")
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)  # walk every term
    for q, found in (
        ("landlord's", True),
        ("O'Brien", True),
        ("\\", False),
        ("'); DROP TABLE support_tickets; --", False),
        ("flat' AND 'x'='x", False),
        ("Mosés", True),
        ("Mosés 東京", False),
    ):
        assert (await repository._search_mode(session, q))[0] is SearchMode.WALK
        page = await repository.ticket_page(session, counselor.id, InboxFilters(q=q))
        assert ([t.id for t in page.items] == [ticket.id]) is found, q


async def test_a_walked_prefix_of_many_students_looks_up_each_tickets_student(
    engine: AsyncEngine,
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same pages either way; only how the walk tests the admission number differs: a
    # lookup of each walked ticket's student for a common prefix, a test PostgreSQL may hash
    # (all students with the prefix) otherwise.
    matching = []
    for n in range(3):
        student = await make_student(session, admission_no=f"QQ/{n}/2020")
        matching.append((await make_ticket(session, student=student)).id)
    await make_ticket(session, student=await make_student(session, admission_no="QR/1/2020"))
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)  # walk every term
    pages = {}
    for many in (False, True):
        monkeypatch.setattr(repository, "_many_students", _answer(many))
        async with query_plans.captured(engine) as sent:
            page = await repository.ticket_page(session, counselor.id, InboxFilters(q="qq"))
        pages[many] = [t.id for t in page.items]
        [walk] = [
            sql for sql, _ in sent if sql.startswith("SELECT array((SELECT support_tickets.id")
        ]
        assert ("LIMIT 1" in walk) is many, walk
    assert pages[True] == pages[False] == list(reversed(matching))


def _answer(value: bool) -> Any:
    async def answer(_source: Any, _text: str, _params: Any) -> bool:
        return value

    return answer


async def test_which_prefixes_are_many_students(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By the planner's estimate of the students with the prefix, against the collection cap;
    # text that cannot be an admission number is none.
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", -1)
    prefix = repository._Search.params("LW")
    assert await repository._many_students(session, "LW", prefix) is True
    assert await repository._many_students(session, "two words", {"q": "two words"}) is False
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 10**9)
    paging.forget_estimates()
    assert await repository._many_students(session, "LW", prefix) is False


async def test_a_term_the_planner_knows_is_common_is_walked_without_counting(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)
    mode, _, matched = await repository._search_mode(session, "anything")
    assert (mode, matched) == (SearchMode.WALK, None)


@pytest.fixture
async def moses_office(session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """`_name_word_office`, with a collection cap (3) its names are past and its other
    sources are not."""
    tickets = await _name_word_office(session)
    monkeypatch.setattr(repository, "SEARCH_COLLECT_CAP", 3)
    return tickets


async def _name_word_office(session: AsyncSession) -> dict[str, int]:
    """Tickets whose students are called Moses in every place a word can hold among a name's
    distinct words (the name-word indexes, migration 0011), past them (a long name), or not at
    all; and tickets that match "moses" by subject or message instead."""
    names = {
        "first": "Moses Wanjiru",  # 'moses' first of the name's words ('moses', 'wanjiru')
        "second": "Amina Moses",  # second ('amina', 'moses')
        "third": "Brian Kevin Moses",  # third
        "fourth": "Brian Kevin Lucy Moses",  # fourth
        "long": "Abel Brian Carol Dan Eve Moses",  # sixth: past the indexed places
        "long_early": "Moses Wu Xi Yan Zed",  # first ('moses' < 'wu'), and in the long list
        "other": "Lucy Otieno",
        "long_other": "Abel Brian Carol Dan Eve Fred",
    }
    tickets: dict[str, int] = {}
    minute = 0
    for round_ in range(3):
        for key, name in names.items():
            minute += 1
            student = await make_student(session, full_name=name)
            ticket = await make_ticket(session, student=student, last_activity_at=_at(minute))
            tickets[f"{key}{round_}"] = ticket.id
        if round_ < 2:  # with "both" below, as many as the tests' cap: still collected
            minute += 1
            by_subject = await make_ticket(
                session, subject="About Moses", last_activity_at=_at(minute)
            )
            tickets[f"subject{round_}"] = by_subject.id
        minute += 1
        by_message = await make_ticket(session, last_activity_at=_at(minute))
        await add_message(session, by_message, "my roommate moses is unwell")
        tickets[f"message{round_}"] = by_message.id
    # Two names at the same moment: the id orders them, in the lists as in the walk.
    minute += 1
    for tie in ("Moses Tie", "Amina Moses"):
        student = await make_student(session, full_name=tie)
        ticket = await make_ticket(session, student=student, last_activity_at=_at(minute))
        tickets[f"tie {tie}"] = ticket.id
    # Named Moses and writing about him: one ticket, listed once.
    minute += 1
    both = await make_ticket(
        session,
        student=await make_student(session, full_name="Moses Kariuki"),
        subject="Moses again",
        last_activity_at=_at(minute),
    )
    tickets["both"] = both.id
    return tickets


def _at(minute: int) -> datetime:
    return AT.replace(hour=0) + timedelta(minutes=minute)


async def _every_page(
    session: AsyncSession, counselor: Counselor, filters: InboxFilters, limit: int
) -> tuple[list[list[int]], list[list[int]], int, bool]:
    """The search's pages followed by cursor and asked for by number, its total and whether
    that is an estimate."""
    by_cursor: list[list[int]] = []
    cursor = None
    while True:
        page = await repository.ticket_page(
            session, counselor.id, filters, limit=limit, cursor=cursor
        )
        by_cursor.append([t.id for t in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    by_number = [
        [
            t.id
            for t in (
                await repository.ticket_page(session, counselor.id, filters, page=n, limit=limit)
            ).items
        ]
        for n in range(1, len(by_cursor) + 2)  # and one past the end
    ]
    first = await repository.ticket_page(session, counselor.id, filters, limit=limit)
    return by_cursor, by_number, first.total, first.total_is_estimate


@pytest.mark.parametrize("status", [None, TicketStatus.OPEN, TicketStatus.CLOSED])
async def test_one_word_too_common_in_names_lists_the_names_by_word(
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
    moses_office: dict[str, int],
    status: TicketStatus | None,
) -> None:
    tickets = moses_office
    closed = [tickets["first1"], tickets["long0"], tickets["message2"], tickets["both"]]
    await session.execute(
        text("UPDATE support_tickets SET status = 'closed' WHERE id = ANY(:ids)"),
        {"ids": closed},
    )
    filters = InboxFilters(q="Moses", status=status)
    # Walked: every ticket tested in inbox order. The reference for what the lists must give.
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)
    walked = await _every_page(session, counselor, filters, limit=4)
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", 10**12)
    mode, _, matched = await repository._search_mode(session, "Moses")
    # Nothing collected to hand on: the page's own statement collects the other sources.
    assert (mode, matched) == (SearchMode.NAME_WORD, None)
    listed = await _every_page(session, counselor, filters, limit=4)
    assert listed[:2] == walked[:2]
    expected = {
        ticket_id
        for key, ticket_id in tickets.items()
        if not key.startswith(("other", "long_other"))
    }
    if status is TicketStatus.CLOSED:
        expected &= set(closed)
    elif status is TicketStatus.OPEN:
        expected -= set(closed)
    found = [ticket_id for page in listed[0] for ticket_id in page]
    assert sorted(found) == sorted(expected)  # each once
    assert found == sorted(found, reverse=True)  # newest activity first (ids in that order)
    assert listed[3] is True  # the total is the planner's estimate


async def test_a_name_words_lists_are_remembered_so_its_names_are_not_collected_again(
    engine: AsyncEngine,
    session: AsyncSession,
    counselor: Counselor,
    moses_office: dict[str, int],
) -> None:
    name_index = "to_tsvector('simple'::regconfig, support_tickets.student_name)"
    async with query_plans.captured(engine) as sent:
        first = await repository.ticket_page(session, counselor.id, InboxFilters(q="moses"))
    assert [sql for sql, _ in sent if name_index in sql], sent
    async with query_plans.captured(engine) as sent:
        again = await repository.ticket_page(session, counselor.id, InboxFilters(q="moses"))
    assert not [sql for sql, _ in sent if name_index in sql], sent
    assert [t.id for t in again.items] == [t.id for t in first.items]
    for page in (first, again):  # an estimate, at least the cap + 1 names the collection found
        assert page.total >= 4
        assert page.total_is_estimate is True
    assert (await repository._search_mode(session, "moses"))[0] is SearchMode.NAME_WORD


async def test_with_another_filter_a_common_name_is_walked_and_still_listed_without(
    engine: AsyncEngine,
    session: AsyncSession,
    counselor: Counselor,
    moses_office: dict[str, int],
) -> None:
    # A list would have to skip, row by row, the name's tickets the filter rejects: with a
    # filter the inbox is walked, as before the lists.
    filtered = InboxFilters(q="Moses", status=TicketStatus.OPEN)
    for _ in range(2):  # collected past the cap, then walked at once
        async with query_plans.captured(engine) as sent:
            page = await repository.ticket_page(session, counselor.id, filtered)
        assert [sql for sql, _ in sent if "EXISTS" in sql], sent  # the walk
        assert not [sql for sql, _ in sent if "tsvector_to_array(name_vector)" in sql], sent
        assert page.items and page.total_is_estimate is True
    assert (await repository._search_mode(session, "Moses", False))[0] is SearchMode.WALK
    # The filtered search remembered the term's names, not a source past the cap: without the
    # filter it is listed.
    assert (await repository._search_mode(session, "Moses"))[0] is SearchMode.NAME_WORD


@pytest.mark.parametrize("remembered", [False, True])
async def test_a_listed_name_whose_other_sources_pass_the_cap_too_is_walked(
    session: AsyncSession,
    counselor: Counselor,
    monkeypatch: pytest.MonkeyPatch,
    moses_office: dict[str, int],
    remembered: bool,
) -> None:
    # Two more subjects: past the tests' cap of 3 with the others.
    added = []
    for minute in (7, 8):
        ticket = await make_ticket(session, subject="Moses", last_activity_at=_at(minute))
        added.append(ticket.id)
    filters = InboxFilters(q="Moses")
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", -1)
    walked = await _every_page(session, counselor, filters, limit=4)
    monkeypatch.setattr(repository, "SEARCH_WALK_ABOVE", 10**12)
    if remembered:
        # As a search of a minute before the subjects came would have left it: the names are
        # listed without collecting anything first, so the statement that lists them collects
        # too few subjects, and says so.
        paging.remember_estimate("search-names:Moses", 100)
        assert (await repository._search_mode(session, "Moses"))[0] is SearchMode.NAME_WORD
    pages = await _every_page(session, counselor, filters, limit=4)
    assert pages[:2] == walked[:2]
    assert set(added) <= {ticket_id for page in pages[0] for ticket_id in page}
    # Remembered as a source past the cap: walked from now on, without collecting again.
    assert (await repository._search_mode(session, "Moses"))[0] is SearchMode.WALK


async def test_words_the_name_word_lists_cannot_hold_are_collected_or_walked_as_before(
    session: AsyncSession, counselor: Counselor, moses_office: dict[str, int]
) -> None:
    # Two words: looked up by their pair; one word that is not plain letters: walked.
    for term in ("Moses Wanjiru", "moses-wanjiru", "Mosés"):
        mode, _, _ = await repository._search_mode(session, term)
        assert mode is not SearchMode.NAME_WORD, term
    # A rare name is still collected, with its exact total.
    mode, _, _ = await repository._search_mode(session, "Kariuki")
    assert mode is SearchMode.COLLECT


async def test_admission_prefixes_match_from_the_start_only(
    session: AsyncSession, counselor: Counselor
) -> None:
    student = await make_student(session, admission_no="MD/5520/2020")
    ticket = await make_ticket(session, student=student)
    for q, found in (("md/55", True), ("MD/5520/2020", True), ("5520", False), ("D/55", False)):
        page = await repository.ticket_page(session, counselor.id, InboxFilters(q=q))
        assert (ticket.id in [t.id for t in page.items]) is found, q


# --- the chat ---------------------------------------------------------------------------------


async def test_delivery_states_come_from_the_outbox(
    session: AsyncSession, counselor: Counselor
) -> None:
    ticket = await make_ticket(session)
    cancelled = await add_message(
        session,
        ticket,
        "reply",
        sender=SenderType.COUNSELOR,
        counselor=counselor,
        delivery=NotificationStatus.CANCELLED,
    )
    view = await repository.get_message_view(session, cancelled.id)
    assert view.delivery is not None
    assert (view.delivery.status, view.delivery.error) == (
        repository.Delivery.FAILED,
        "Delivery was cancelled.",
    )


async def test_a_before_beyond_the_oldest_is_an_empty_page(
    session: AsyncSession,
) -> None:
    ticket = await make_ticket(session)
    first = await add_message(session, ticket)
    page = await repository.message_page(session, ticket.id, before=first.id)
    assert (page.items, page.total, page.has_next) == ([], 1, False)


# --- statement cache -------------------------------------------------------------------------


def test_statements_are_built_once_per_shape() -> None:
    shape = _Shape.of(InboxFilters(status=TicketStatus.OPEN), None)
    first = repository._page_statement(shape, _Position.AFTER, 20, True)
    assert repository._page_statement(shape, _Position.AFTER, 20, True) is first
    other = _Shape.of(InboxFilters(status=TicketStatus.CLOSED), None)
    assert other == shape  # the value is a parameter, not part of the shape
    assert repository._page_statement(shape, _Position.FIRST, 20, True) is not first


def test_filter_values_are_rendered_as_constants_for_the_planner() -> None:
    shape = _Shape.of(InboxFilters(status=TicketStatus.OPEN, category_id=3), None)
    sql = str(repository._page_statement(shape, _Position.FIRST, 20, True))
    assert "__[POSTCOMPILE_status]" in sql
    assert "__[POSTCOMPILE_category_id]" in sql


# --- search: names by their word pairs, collected terms paged from their keys -----------------


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("Moses Kiptoo", ["kiptoo moses"]),
        ("kiptoo MOSES", ["kiptoo moses"]),
        ("Mary Wanjiku Otieno", ["mary otieno", "mary wanjiku", "otieno wanjiku"]),
        ("Moses", None),  # one word: the word's own list
        ("Moses moses", None),  # one distinct word
        ("Moses or Kiptoo", None),  # OR is an operator
        ('"Moses Kiptoo"', None),  # a phrase
        ("Moses -Kiptoo", None),  # a negation
        ("PHY0167 exam", None),  # digits: the parser may split them differently
        ("José Otieno", None),  # other letters: lowercased by the database's rules
    ],
)
def test_only_plain_words_are_searched_by_their_pairs(text: str, pairs: list[str] | None) -> None:
    assert repository.name_pairs(text) == pairs


async def test_the_trigger_writes_every_pair_of_a_names_words(session: AsyncSession) -> None:
    ticket = await make_ticket(
        session, student=await make_student(session, full_name="Grace  Wanjiku-Otieno Grace")
    )
    pairs = text("SELECT name_pairs FROM support_tickets WHERE id = :id")
    # The words of to_tsvector('simple', ...), each distinct pair once, in sorted order.
    assert (await session.execute(pairs, {"id": ticket.id})).scalar_one() == [
        "grace otieno",
        "grace wanjiku",
        "grace wanjiku-otieno",
        "otieno wanjiku",
        "otieno wanjiku-otieno",
        "wanjiku wanjiku-otieno",
    ]
    await session.execute(
        text("UPDATE support_tickets SET student_name = 'Ruth Achieng' WHERE id = :id"),
        {"id": ticket.id},
    )
    assert (await session.execute(pairs, {"id": ticket.id})).scalar_one() == ["achieng ruth"]


async def test_a_name_search_by_pairs_finds_what_the_words_find(
    session: AsyncSession, counselor: Counselor, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [
        "Moses Kiptoo",
        "Kiptoo Moses",
        "Moses Kibet Kiptoo",
        "Moses Otieno",
        "Kiptoo Wanjiru",
        "Mosesi Kiptoo",
    ]
    tickets = {}
    for name in names:
        student = await make_student(session, full_name=name)
        tickets[name] = (await make_ticket(session, student=student, subject="Help")).id

    async def found(q: str) -> set[int]:
        page = await repository.ticket_page(session, counselor.id, InboxFilters(q=q), limit=100)
        return {t.id for t in page.items}

    by_pairs = await found("moses kiptoo")
    assert by_pairs == {tickets[n] for n in names[:3]}
    # The same search through the words' own index finds the same tickets.
    monkeypatch.setattr(repository, "name_pairs", lambda _text: None)
    paging.forget_estimates()
    assert await found("moses kiptoo") == by_pairs


async def test_a_collected_terms_page_is_one_statement_at_any_depth(
    engine: AsyncEngine, session: AsyncSession, counselor: Counselor
) -> None:
    tickets = [await make_ticket(session, subject=f"Bursary form {i}") for i in range(7)]
    newest_first = [t.id for t in reversed(tickets)]
    filters = InboxFilters(q="bursary")
    await repository.ticket_page(session, counselor.id, filters)  # the estimate, once a minute
    async with query_plans.captured(engine) as sent:
        first = await repository.ticket_page(session, counselor.id, filters, limit=3)
        third = await repository.ticket_page(session, counselor.id, filters, page=3, limit=3)
        beyond = await repository.ticket_page(session, counselor.id, filters, page=4, limit=3)
    assert [t.id for t in first.items] == newest_first[:3]
    assert [t.id for t in third.items] == newest_first[6:]
    assert (first.total, first.total_is_estimate, first.has_next) == (7, False, True)
    assert (third.has_next, beyond.items, beyond.total) == (False, [], 7)
    # Each page is one statement that collects, counts and reads the page; no page=N anchor
    # is looked up before it (only the planner setting is sent besides).
    reads = [sql for sql, _ in sent if "set_config" not in sql]
    assert len(reads) == 3, reads
    assert all("found_0" in sql for sql in reads), reads

    assert first.next_cursor is not None
    second = await repository.ticket_page(
        session, counselor.id, filters, cursor=first.next_cursor, limit=3
    )
    assert [t.id for t in second.items] == newest_first[3:6]
    assert second.page == 2


async def test_a_term_found_in_messages_pages_the_same_without_keys(
    session: AsyncSession, counselor: Counselor
) -> None:
    # Two tickets by subject (keyed), five by a message only (ids): the pages are read by the
    # page statement, and come out as a keyed term's would.
    tickets = [
        await make_ticket(session, subject="Bursary form" if i < 2 else f"Question {i}")
        for i in range(7)
    ]
    for ticket in tickets[2:]:
        await add_message(session, ticket, "about the bursary")
    newest_first = [t.id for t in reversed(tickets)]
    filters = InboxFilters(q="bursary")
    _, _, found = await repository._search_mode(session, "bursary")
    assert found == sorted(t.id for t in tickets)
    pages = [
        await repository.ticket_page(session, counselor.id, filters, page=n, limit=3)
        for n in (1, 2, 3)
    ]
    assert [[t.id for t in p.items] for p in pages] == [
        newest_first[:3],
        newest_first[3:6],
        newest_first[6:],
    ]
    assert [(p.total, p.total_is_estimate, p.has_next) for p in pages] == [
        (7, False, True),
        (7, False, True),
        (7, False, False),
    ]
    assert pages[0].next_cursor is not None
    second = await repository.ticket_page(
        session, counselor.id, filters, cursor=pages[0].next_cursor, limit=3
    )
    assert [t.id for t in second.items] == newest_first[3:6]

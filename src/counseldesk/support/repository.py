"""The queries behind the support inbox and the chat, built to stay O(page) at millions of rows.
docs/benchmarks.md has the measurements at 1M students, 2M tickets and 20M messages.

Inbox (`ticket_page`): one statement returns the page with everything a row shows — category,
student, assignee, the viewing counselor's unread count — plus a bounded count for the total
(`page=N` and search send a statement or two before it, below):
- The page's keys come from one of the keyset indexes (`last_activity_at DESC, id DESC`, one
  per filter, each carrying the other filter columns; see models.py) by an index-only scan that
  stops after `limit + 1` entries; then those rows by primary key, then the joins and the unread
  count for just them (primary-key lookups; the unread count is an index-only scan of messages
  capped at UNREAD_CAP). 20 tickets cost what 1 costs: no N+1.
- Cursors carry the last row's key: the next page starts right there in the index, at any depth.
- `page=N` without a cursor first finds page N's first key (a statement of its own), then reads
  the page from that key like a cursor would. Near the top, by an index-only scan with an
  OFFSET over index entries. Deeper, by adding up ticket counts per 30 days, then per day,
  that triggers keep (`_day_anchor_statement`, migrations 0006 and 0009), then counting inside
  one day: about the same time at any depth, for all tickets and for any one or two filters.
  Three or more filters, and searches, count index entries: linear in N, about 70 ms per
  million (their sets are small).
  The dashboard itself follows `next_cursor`.
- Totals: counted exactly up to EXACT_COUNT_LIMIT rows (cheap by construction); beyond that
  the planner's estimate (EXPLAIN of the count), cached for a minute, marked as an estimate.

Search (`q`): subject, student name (full text, 'simple' configuration — names and mixed-language
messages are not stemmed English), admission-number prefix, and message text; see `_Search`
for how a term is found (collected from the GIN indexes, or the inbox walked in order).

Chat (`message_page`): the newest `limit` messages of a ticket from (ticket_id, id DESC),
joined with the sender and the reply's outbox row (delivery state), returned oldest first.

Statements are built once per shape and cached (`lru_cache`), every value bound — except filter
values, which the planner must see (see `_Shape.conditions`). The pages run straight on
asyncpg (`fetch_records`, db/records.py): no SQLAlchemy Row layer, and no BEGIN/COMMIT when
the request does nothing else. The API reads them through a `Reader`, without an ORM session;
tests and other callers may pass a session.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import combinations
from typing import Any

from asyncpg import Record
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    ScalarSelect,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from counseldesk.db.paging import (
    DAMAGED_CURSOR,
    EXACT_COUNT_LIMIT,
    Cursor,
    Page,
    constant,
    decode_cursor,
    encode_cursor,
    estimated_rows,
    find_page_start,
    literal_int,
    planner_rows,
    remember_estimate,
    remembered_estimate,
)
from counseldesk.db.records import Source, fetch_records, use_settings
from counseldesk.errors import InvalidInput, NotFound, storable_text
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.support.models import (
    ACTIVITY_DAY_COLUMNS,
    ACTIVITY_PERIOD_BIT,
    ACTIVITY_PERIOD_DAYS,
    NAME_WORD_COUNT,
    NAME_WORD_PLACES,
    SenderType,
    SupportCategory,
    SupportMessage,
    SupportTicket,
    TicketPriority,
    TicketRead,
    TicketStatus,
    name_word,
    support_ticket_activity_days,
)
from counseldesk.telegram.models import Notification, NotificationStatus

TICKETS_PER_PAGE = 20
MESSAGES_PER_PAGE = 50
# Unread counts stop here ("99+"): counting a thousand unread messages helps nobody.
UNREAD_CAP = 99
# Search: a term the planner expects in more messages than this is common: walk the inbox.
SEARCH_WALK_ABOVE = 200_000
# Otherwise up to this many matches per source (subjects, students' tickets, messages) are
# collected from the indexes; a term with more walks the inbox after all.
SEARCH_COLLECT_CAP = 2_000
MAX_QUERY_LENGTH = 200


class Assigned(enum.StrEnum):
    MINE = "mine"
    UNASSIGNED = "unassigned"
    ALL = "all"


class Delivery(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


# --- what the queries return -------------------------------------------------------------------
#
# Shaped as the JSON API shows them: the list endpoints serialize these straight to JSON
# (support/api.py) rather than copying each row into a response model first. `slots`, not
# `frozen`: a frozen dataclass sets each field through object.__setattr__, five times slower
# per row (1.6 against 0.3 us for 15 fields), and a page builds 20 to 100 of them.


@dataclass(slots=True)
class CategoryRef:
    id: int
    name: str


@dataclass(slots=True)
class StudentRef:
    id: int
    full_name: str
    admission_no: str
    telegram_user_id: int


@dataclass(slots=True)
class StudentDetailRef(StudentRef):
    phone: str
    year_of_study: int


@dataclass(slots=True)
class CounselorRef:
    id: int
    full_name: str


@dataclass(slots=True)
class TicketView:
    """One row of the inbox (the API's TicketSummary)."""

    id: int
    subject: str
    status: TicketStatus
    priority: TicketPriority
    category: CategoryRef | None
    student: StudentRef
    assigned_counselor: CounselorRef | None
    last_activity_at: datetime
    last_message_preview: str
    last_sender_type: SenderType | None
    message_count: int
    unread_count: int
    crisis: bool
    created_at: datetime


@dataclass(slots=True)
class TicketDetailView(TicketView):
    """A ticket with what the chat header shows (the API's TicketDetail)."""

    student: StudentDetailRef
    closed_at: datetime | None
    crisis_detected_at: datetime | None


@dataclass(slots=True)
class MediaView:
    kind: str
    file_name: str | None
    mime_type: str | None
    url: str


@dataclass(slots=True)
class DeliveryView:
    status: Delivery
    error: str | None
    notification_id: int


@dataclass(slots=True)
class MessageView:
    id: int
    ticket_id: int
    sender_type: SenderType
    counselor: CounselorRef | None
    body: str
    is_internal: bool
    media: MediaView | None
    created_at: datetime
    delivery: DeliveryView | None


# Labels as PostgreSQL returns them, to members: a dict lookup, not an Enum call per value.
_STATUSES = {member.value: member for member in TicketStatus}
_PRIORITIES = {member.value: member for member in TicketPriority}
_SENDERS = {member.value: member for member in SenderType}


@dataclass(frozen=True)
class InboxFilters:
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    category_id: int | None = None
    assigned: Assigned = Assigned.ALL
    q: str | None = None

    def fingerprint(self) -> str:
        """Identifies the result set a cursor belongs to (not who asked: "mine" is per viewer,
        and a shared link means the same list to each counselor)."""
        canonical = json.dumps(
            [
                self.status and self.status.value,
                self.priority and self.priority.value,
                self.category_id,
                self.assigned.value,
                self.q,
            ]
        )
        return hashlib.blake2b(canonical.encode(), digest_size=6).hexdigest()


def clean_query(q: str | None) -> str | None:
    """The search text as matched: trimmed, inner whitespace collapsed; None when empty."""
    text = storable_text(" ".join((q or "").split()), "q")
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"q has at most {MAX_QUERY_LENGTH} characters.")
    return text or None


# --- the inbox -----------------------------------------------------------------------------------
#
# Statements are built once per shape (which filters are present, how the page is found, the
# page size) and cached; values are bound parameters, filter values are constants (see
# `_Shape._build_conditions`). Building a statement of this size costs SQLAlchemy about as much
# as PostgreSQL needs to run it (~0.8 ms), which matters at ~1 ms a page.

# The text-search configuration must be a literal: the subject and name GIN indexes are on
# to_tsvector('simple', column), and a parameter there would not match them.
_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")
_ACTIVITY_ORDER = (SupportTicket.last_activity_at.desc(), SupportTicket.id.desc())
_ME = bindparam("me", type_=Integer)
_MATCHED = bindparam("matched", type_=ARRAY(BigInteger))


@dataclass(frozen=True)
class _Shape:
    """Which filters a request has (not their values): the cache key of its statements."""

    status: bool
    priority: bool
    category: bool
    assigned: Assigned
    search: SearchMode | None = None
    admission: bool = False  # the search text can be an admission-number prefix
    # A walked prefix that many students' admission numbers have: tested per walked ticket.
    many_students: bool = False

    @classmethod
    def of(
        cls, filters: InboxFilters, search: SearchMode | None, many_students: bool = False
    ) -> _Shape:
        return cls(
            status=filters.status is not None,
            priority=filters.priority is not None,
            category=filters.category_id is not None,
            assigned=filters.assigned,
            search=search,
            admission=bool(filters.q) and _admission_range(filters.q or "") is not None,
            many_students=many_students,
        )

    def conditions(self) -> tuple[ColumnElement[bool], ...]:
        """The WHERE clause, built once per shape and shared by the statements that use it
        (the page, its count, a `page=N` anchor)."""
        return _conditions(self)

    def _build_conditions(self) -> tuple[ColumnElement[bool], ...]:
        # Filter values are written into the SQL (`literal_execute`), not bound: they are enum
        # members and integers, never free text, and the planner must see them. Filters are
        # skewed — 'open' is 1% of tickets, 'closed' 87% — and a reused prepared statement's
        # generic plan, blind to the value, walks the wrong index (measured: 45 ms instead of 2).
        conditions: list[ColumnElement[bool]] = []
        if self.status:
            conditions.append(SupportTicket.status == constant("status"))
        if self.priority:
            conditions.append(SupportTicket.priority == constant("priority"))
        if self.category:
            conditions.append(SupportTicket.category_id == constant("category_id"))
        if self.assigned is Assigned.MINE:
            conditions.append(SupportTicket.assigned_counselor_id == constant("mine"))
        elif self.assigned is Assigned.UNASSIGNED:
            conditions.append(SupportTicket.assigned_counselor_id.is_(None))
        if self.search is SearchMode.COLLECT:
            # The ids _search_mode collected, bound as one array: this statement does not depend
            # on the term, so PostgreSQL keeps one plan for it (see _SEARCH_SETTINGS).
            conditions.append(SupportTicket.id == any_(_MATCHED))
        elif self.search is SearchMode.WALK:
            search = _Search(self.admission, in_the_sql=True, many_students=self.many_students)
            conditions.append(search.ticket_matches())
        return tuple(conditions)


@lru_cache(maxsize=256)
def _conditions(shape: _Shape) -> tuple[ColumnElement[bool], ...]:
    return shape._build_conditions()


def _params(filters: InboxFilters, counselor_id: int) -> dict[str, Any]:
    params: dict[str, Any] = {"me": counselor_id}
    if filters.status is not None:
        params["status"] = filters.status
    if filters.priority is not None:
        params["priority"] = filters.priority
    if filters.category_id is not None:
        params["category_id"] = filters.category_id
    if filters.assigned is Assigned.MINE:
        params["mine"] = counselor_id
    if filters.q:
        params.update(_Search.params(filters.q))
    return params


class SearchMode(enum.Enum):
    COLLECT = "collect"
    WALK = "walk"
    # One word too common in names to collect: the name-word indexes give the name's matches in
    # inbox order, merged with the other sources' matches (`_name_word_page_statement`).
    NAME_WORD = "name_word"


# Two or more words of ASCII letters, nothing else: websearch_to_tsquery reads these as "all of
# the words" and the 'simple' configuration lowercases them as Python does, so their pairs can
# be computed here and looked up in the pairs index (migration 0010). Anything else (quotes,
# OR, -word, digits, other scripts) is matched word by word as before.
_PLAIN_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)+")
# One word of ASCII letters: websearch_to_tsquery reads it as that one word, and to_tsvector
# gives the same single word, so PostgreSQL can compute the word the name-word indexes hold
# (migration 0011) from the text itself, in any locale.
_ONE_WORD = re.compile(r"[A-Za-z]+")


def name_pairs(text: str) -> list[str] | None:
    """The pairs of distinct words a ticket's name must all have to match `text` ('a b' with
    a < b, as the trigger of migration 0010 writes them), or None when `text` is not two or more
    plain words."""
    if not _PLAIN_WORDS.fullmatch(text):
        return None
    words = sorted({word.lower() for word in text.split(" ")})
    if len(words) < 2 or "or" in words:  # OR is an operator to websearch_to_tsquery
        return None
    return [f"{first} {second}" for first, second in combinations(words, 2)]


def _admission_range(text: str) -> tuple[str, str] | None:
    # Admission numbers are stored upper-cased without spaces; "sc/12" finds SC/12xx/...
    if " " in text:
        return None
    prefix = text.upper()
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class _Search:
    """Search: where a term is looked for, and the two ways of finding its tickets.

    Collect: take the matching ids straight from the GIN and prefix indexes, then order those
    tickets by activity — cost grows with the number of matches. Walk: go down the inbox in
    order and test each ticket — cost grows with how far apart the matches are. PostgreSQL can
    do either but cannot choose between them by itself, because the choice depends on how many
    rows match, and for a word outside its most-common list the planner only knows "rarer than
    the rarest listed word" (here up to 0.4% of 20M messages). So `ticket_page` asks the
    planner first and, when that does not settle it, collects with a cap: the ids if every
    source stays under it, the walk if one does not. A third way for one word found in more
    names than the cap (a common first name): the name-word indexes list those tickets in
    inbox order, and only the other sources are collected (SearchMode.NAME_WORD).
    """

    admission: bool
    pairs: bool = False  # the text is plain words: names are matched by their word pairs
    word: bool = False  # the text is one plain word: the name-word indexes can list its names
    # The term written into the SQL instead of bound, for the walk (`ticket_matches`).
    in_the_sql: bool = False
    # The admission prefix is many students' (`_many_students`): the walk looks up each
    # walked ticket's student instead of hashing all of theirs (`ticket_matches`).
    many_students: bool = False

    @classmethod
    def of(cls, text: str) -> _Search:
        return cls(
            admission=_admission_range(text) is not None,
            pairs=name_pairs(text) is not None,
            word=_ONE_WORD.fullmatch(text) is not None,
        )

    @staticmethod
    def params(text: str) -> dict[str, Any]:
        params: dict[str, Any] = {"q": text}
        bounds = _admission_range(text)
        if bounds is not None:
            params["admission_from"], params["admission_to"] = bounds
        pairs = name_pairs(text)
        if pairs is not None:
            params["name_pairs"] = pairs
        return params

    @property
    def tsquery(self) -> ColumnElement[Any]:
        term = bindparam("q", type_=String, literal_execute=self.in_the_sql)
        return func.websearch_to_tsquery(_SIMPLE, term)

    def subject_matches(self) -> ColumnElement[bool]:
        return func.to_tsvector(_SIMPLE, SupportTicket.subject).bool_op("@@")(self.tsquery)

    def name_matches(self) -> ColumnElement[bool]:
        # The ticket's own copy of the student's name: no join to students, so walking the
        # inbox tests each ticket's row instead of first hashing every matching student.
        if self.pairs:
            pairs = bindparam("name_pairs", type_=ARRAY(Text))
            return SupportTicket.name_pairs.contains(pairs)
        return func.to_tsvector(_SIMPLE, SupportTicket.student_name).bool_op("@@")(self.tsquery)

    def admission_matches(self, student: Any) -> ColumnElement[bool]:
        inline = self.in_the_sql
        return and_(
            student.admission_no.op("~>=~")(
                bindparam("admission_from", type_=String, literal_execute=inline)
            ),
            student.admission_no.op("~<~")(
                bindparam("admission_to", type_=String, literal_execute=inline)
            ),
        )

    def body_matches(self) -> ColumnElement[bool]:
        # The stored vector (migration 0008), which the full-text index is on: one test for
        # the collection, the walk's probe of each ticket's messages and its hashed lookup.
        return SupportMessage.body_vector.bool_op("@@")(self.tsquery)

    def _ticket_sources(self, column: ColumnElement[Any], names: bool = True) -> list[Select[Any]]:
        """`column` of the tickets each ticket-side source matches: subject, student name
        (unless not `names`), and admission number when the text can be one."""
        selects = [select(column).where(self.subject_matches())]
        if names:
            selects.append(select(column).where(self.name_matches()))
        if self.admission:
            student = aliased(Student)
            selects.append(
                select(column)
                .join(student, student.telegram_user_id == SupportTicket.telegram_user_id)
                .where(self.admission_matches(student))
            )
        return selects

    def sources(self) -> list[Select[Any]]:
        """The ticket ids each source matches: the ticket-side ones, then message text."""
        return [
            *self._ticket_sources(SupportTicket.id.label("id")),
            select(SupportMessage.ticket_id.label("id")).where(self.body_matches()),
        ]

    def capped_ids(self, cap: int, names: bool = True) -> list[ColumnElement[Any]]:
        """Each source's matching ticket ids, one array each of at most `cap` + 1 (enough to
        tell "more than cap"): the ticket-side sources, the student name's second (unless not
        `names`: the name-word lists give it instead), then message text."""
        ticket_sources = self._ticket_sources(SupportTicket.id.label("id"), names)
        messages = select(SupportMessage.ticket_id).where(self.body_matches())
        capped = (source.limit(literal_int(cap + 1)) for source in (*ticket_sources, messages))
        return [func.array(ids.scalar_subquery(), type_=ARRAY(BigInteger)) for ids in capped]

    def ticket_matches(self) -> ColumnElement[bool]:
        """The same test for one ticket at a time, for walking the inbox. OR keeps these
        subqueries as subplans, so the planner picks per source between a hash of its matches
        (a rare term) and a probe per ticket (a common one). That choice depends on the term,
        so a statement with this test is built `in_the_sql` (see _SEARCH_SETTINGS)."""
        # The stored vectors (migration 0007), not to_tsvector per ticket walked: the same
        # configuration and text as the indexes the collection reads, ~10x cheaper to test.
        tests: list[ColumnElement[bool]] = [
            SupportTicket.subject_vector.bool_op("@@")(self.tsquery),
            SupportTicket.name_vector.bool_op("@@")(self.tsquery),
        ]
        if self.admission:
            student = aliased(Student)
            own_student = student.telegram_user_id == SupportTicket.telegram_user_id
            if self.many_students:
                # A scalar subquery that depends on the ticket is never hashed: PostgreSQL
                # looks up each walked ticket's student. For a common prefix it hashed every
                # student with it instead (125,000 for "LW", 46 ms), costing the walk as if it
                # tested every ticket, though 135 gave the page.
                probe: Select[Any] = select(literal_column("true")).where(
                    own_student, self.admission_matches(student)
                )
                tests.append(probe.limit(literal_int(1)).scalar_subquery().is_not(None))
            else:
                tests.append(exists().where(own_student, self.admission_matches(student)))
        tests.append(
            exists().where(SupportMessage.ticket_id == SupportTicket.id, self.body_matches())
        )
        return or_(*tests)


# How a search's statements are planned, for the rest of the request (`use_settings`: set on a
# reader's connection, which keeps them for the next search; records.py).
#
# Collected: the collection, and the page that reads its ids, with kept ("generic") plans. The
# collection's plan does not depend on the term: a bitmap scan of each source's index, cut at
# the cap. Planning it for each term cost 0.34 ms (a rare word) to 0.68 ms (an admission number)
# on the benchmark data, more than running it; its generic plan is those same index scans
# (docs/benchmarks.md, session 10). The page statement must not be planned per term either:
# with its joins that cost 1-4 ms, and "auto" planned it anew for a term of one or two matches,
# whose plan looked so much cheaper than the kept one (0.7 ms for an admission number's one
# ticket, against a 0.05 ms run).
#
# Walked: the walk's statement must be planned for the term, since how each source is best
# tested (a hash of its matches or a probe per ticket) depends on how common the term is. A
# plan kept without the term hashes every match: for "landlord", 529,074 messages, 17.9 s. So
# the walk's statement has the term written into its SQL (`_Search.in_the_sql`, quoted by the
# dialect as any literal): its kept plan is the one for that term, made once per connection
# and term and reused, where planning it for the term on every request cost 0.2-1.8 ms and a
# round trip to switch plan_cache_mode and back (docs/benchmarks.md, session 13). Only the
# walk's ids are term-specific; the page that reads them is the collected one's.
#
# Parallel workers are off for every connection of the app (db/engine.py): the planner's
# guesses for a search are large enough to start them, at ~40 ms, more than the query.
_SEARCH_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


@dataclass(frozen=True)
class _SearchStatements:
    estimate: Select[Any]  # every match, for EXPLAIN's estimate of how many
    # Each source's matches, at most cap + 1 of each, in one row: for a page with other
    # filters (without, the page's own statement collects, `_collected_page_statement`).
    collect: Select[Any]


# Students whose admission numbers start with a search text, for EXPLAIN (`_many_students`).
_PREFIX_STUDENTS = select(Student.id).where(_Search(admission=True).admission_matches(Student))
_MANY_STUDENTS = "search-students:"


async def _many_students(source: Source, text: str, params: dict[str, Any]) -> bool:
    """Whether a walked text is an admission-number prefix of more students than the collection
    cap, by the planner's estimate (remembered for a minute): those are tested per walked
    ticket (`_Search.many_students`). A rarer prefix, or none (any one word is tried as one),
    keeps the test PostgreSQL may hash, which is cheaper when the walk is long. `params`: the
    page's, which hold the prefix's bounds (`_Search.params`)."""
    if _admission_range(text) is None:
        return False
    students = await estimated_rows(source, _MANY_STUDENTS + text, _PREFIX_STUDENTS, params)
    return students > SEARCH_COLLECT_CAP


@lru_cache(maxsize=8)
def _search_statements(search: _Search, cap: int) -> _SearchStatements:
    """A term's statements (`_Search.capped_ids` for the collections). The cap is part of the
    cache key: a statement built for another cap would cut the collected ids short unnoticed."""
    return _SearchStatements(
        estimate=union(*search.sources()).subquery("matched").select(),
        collect=select(*search.capped_ids(cap)),
    )


async def _search_mode(
    source: Source,
    text: str,
    lists: bool = True,
    in_page: bool = False,
    then: SearchMode | None = None,
) -> tuple[SearchMode, int, list[int] | None]:
    """Collect, walk or list by name word; the planner's estimate of the matches; the ids
    collected, unless `in_page` left the collection to the page's own statement.

    When the planner knows the term is common (it is in the statistics' most-common list) we
    walk at once. Otherwise we collect each source's matches up to SEARCH_COLLECT_CAP — reading
    the GIN posting lists once and stopping at the cap on the table side — and walk instead if a
    source has more. Except the student name's, for one word: its names too many to collect are
    listed in inbox order by the name-word indexes, and only the other sources are collected —
    when `lists`, which the inbox allows without other filters. With a filter the walk stays:
    the lists would have to skip the name's tickets the filter rejects, row by row (a common
    name with `priority=urgent`: 185 ms, against 4.2 ms for walking the urgent tickets).

    What a collection found past the cap is remembered for a minute (`_past_the_cap`), so the
    term is not collected again, only to be cut short again: it is walked, or for names alone,
    listed by word. The total shown then is an estimate; it is at least what the capped
    collection found in one source. `then` is what a collection just decided (`_past_the_cap`),
    followed even if what it remembered is gone by now.
    """
    search = _Search.of(text)
    statements = _search_statements(search, SEARCH_COLLECT_CAP)
    params = _Search.params(text)
    await use_settings(source, _SEARCH_SETTINGS)  # for every way; sent with the next read
    # EXPLAIN plans for the term's own values whatever plan_cache_mode says.
    estimate = await estimated_rows(source, "search:" + text, statements.estimate, params)
    remembered = remembered_estimate(_LARGEST_SOURCE + text) or 0
    names = remembered_estimate(_NAMES + text) or 0  # only ever remembered for one word
    lists = lists and search.word
    many_names = names > SEARCH_COLLECT_CAP or then is SearchMode.NAME_WORD
    if (
        then is SearchMode.WALK
        or estimate > SEARCH_WALK_ABOVE
        or remembered > SEARCH_COLLECT_CAP
        or (many_names and not lists)
    ):
        return SearchMode.WALK, max(estimate, remembered, names), None
    if many_names:
        # Listed by word. The other sources are collected in the page's own statement, which
        # also tells whether one of them went past the cap (`_name_word_page_statement`).
        return SearchMode.NAME_WORD, max(estimate, names), None
    if in_page:  # collected by the page's statement, which tells the sources' sizes
        return SearchMode.COLLECT, estimate, None
    found = (await fetch_records(source, statements.collect, params))[0]
    then = _past_the_cap(text, search, [len(ids) for ids in found], lists)
    if then is not None:  # walked, or listed by word
        return await _search_mode(source, text, lists, in_page, then)
    return SearchMode.COLLECT, estimate, sorted({ticket_id for ids in found for ticket_id in ids})


# Remembered for a minute after a collection went past the cap (`_past_the_cap`), by term.
_LARGEST_SOURCE = "search-largest-source:"
_NAMES = "search-names:"


def _past_the_cap(text: str, search: _Search, sizes: list[int], lists: bool) -> SearchMode | None:
    """How to find the term's tickets if a source of its collection went past the cap
    (`sizes`: how many each found, the student name's second), remembering which did: names
    alone, of one word, are listed by word without other filters (`lists`); anything else is
    walked. None when none did."""
    named, others = sizes[1], max(sizes[:1] + sizes[2:])
    if named > SEARCH_COLLECT_CAP and search.word:
        remember_estimate(_NAMES + text, named)
    if others > SEARCH_COLLECT_CAP or (named > SEARCH_COLLECT_CAP and not search.word):
        remember_estimate(_LARGEST_SOURCE + text, max(sizes))
    if max(sizes) <= SEARCH_COLLECT_CAP:
        return None
    if others <= SEARCH_COLLECT_CAP and search.word and lists:
        return SearchMode.NAME_WORD
    return SearchMode.WALK


def _unread_count(ticket: Any, read: Any) -> ColumnElement[int]:
    """Student messages after the counselor's read mark, counted up to UNREAD_CAP.

    Most rows take the first branch: the ticket's newest student message is already read.
    Otherwise an index-only scan of (ticket_id, id DESC) INCLUDE (sender_type), at most
    UNREAD_CAP student entries long.
    """
    mark = func.coalesce(read.last_read_message_id, 0)
    unread = (
        select(SupportMessage.id)
        .where(
            SupportMessage.ticket_id == ticket.id,
            SupportMessage.id > mark,
            SupportMessage.sender_type == SenderType.STUDENT,
        )
        .limit(literal_int(UNREAD_CAP))
        # Two levels down from the ticket row: auto-correlation only looks one level up.
        .correlate(ticket, read)
        .subquery()
    )
    count = select(func.count()).select_from(unread).scalar_subquery()
    return case((func.coalesce(ticket.last_student_message_id, 0) <= mark, 0), else_=count)


def _ticket_select(ticket: Any) -> Select[Any]:
    """A ticket row with its category, student, assignee and the viewer's (`me`) unread count.

    `ticket` is SupportTicket itself or an alias of a page subquery; every join is a
    primary-key lookup per row.
    """
    read = aliased(TicketRead)
    return (
        select(
            ticket.id,
            ticket.subject,
            ticket.status,
            ticket.priority,
            ticket.category_id,
            SupportCategory.name.label("category_name"),
            Student.id.label("student_id"),
            Student.full_name.label("student_name"),
            Student.admission_no,
            Student.telegram_user_id,
            Student.phone,
            Student.year_of_study,
            ticket.assigned_counselor_id,
            Counselor.full_name.label("assignee_name"),
            ticket.last_activity_at,
            ticket.last_message_preview,
            ticket.last_sender_type,
            ticket.message_count,
            _unread_count(ticket, read).label("unread_count"),
            ticket.created_at,
            ticket.closed_at,
            ticket.crisis_detected_at,
        )
        .select_from(ticket)
        .join(Student, Student.id == ticket.student_id)
        .outerjoin(SupportCategory, SupportCategory.id == ticket.category_id)
        .outerjoin(Counselor, Counselor.id == ticket.assigned_counselor_id)
        .outerjoin(read, and_(read.ticket_id == ticket.id, read.counselor_id == _ME))
    )


def _ticket_view(row: Record) -> TicketView:
    category_id = row["category_id"]
    assignee_id = row["assigned_counselor_id"]
    last_sender = row["last_sender_type"]
    return TicketView(
        id=row["id"],
        subject=row["subject"],
        status=_STATUSES[row["status"]],
        priority=_PRIORITIES[row["priority"]],
        category=None if category_id is None else CategoryRef(category_id, row["category_name"]),
        student=StudentRef(
            id=row["student_id"],
            full_name=row["student_name"],
            admission_no=row["admission_no"],
            telegram_user_id=row["telegram_user_id"],
        ),
        assigned_counselor=None
        if assignee_id is None
        else CounselorRef(id=assignee_id, full_name=row["assignee_name"]),
        last_activity_at=row["last_activity_at"],
        last_message_preview=row["last_message_preview"],
        last_sender_type=None if last_sender is None else _SENDERS[last_sender],
        message_count=row["message_count"],
        unread_count=row["unread_count"],
        crisis=row["crisis_detected_at"] is not None,
        created_at=row["created_at"],
    )


def _ticket_detail_view(row: Record) -> TicketDetailView:
    summary = _ticket_view(row)
    values = {name: getattr(summary, name) for name in TicketView.__dataclass_fields__}
    values["student"] = StudentDetailRef(
        id=row["student_id"],
        full_name=row["student_name"],
        admission_no=row["admission_no"],
        telegram_user_id=row["telegram_user_id"],
        phone=row["phone"],
        year_of_study=row["year_of_study"],
    )
    return TicketDetailView(
        **values, closed_at=row["closed_at"], crisis_detected_at=row["crisis_detected_at"]
    )


_ONE_TICKET = _ticket_select(SupportTicket).where(SupportTicket.id == bindparam("ticket_id"))


async def get_ticket_view(
    session: AsyncSession, ticket_id: int, counselor_id: int
) -> TicketDetailView:
    rows = await fetch_records(session, _ONE_TICKET, {"ticket_id": ticket_id, "me": counselor_id})
    if not rows:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return _ticket_detail_view(rows[0])


class _Position(enum.Enum):
    FIRST = "first"  # page 1
    AFTER = "after"  # a cursor: strictly after its key
    FROM = "from"  # page=N: from its first key (found by _anchor_statement) on


@lru_cache(maxsize=256)
def _anchor_statement(shape: _Shape) -> Select[datetime, int]:
    """Page N's first key: skip (N - 1) * limit entries of a keyset index. Only columns the index
    holds are read, so this is an index-only scan, not a walk over table rows.

    A statement of its own, not a subquery of the page: PostgreSQL cannot cost an OFFSET it does
    not know, so a prepared statement with one never gets a cached plan, and the page's joins
    were planned again on every request (~1 ms). This one is cheap to plan each time, and the
    page statement it feeds keeps its cached plan.
    """
    return (
        select(SupportTicket.last_activity_at, SupportTicket.id)
        .where(*shape.conditions())
        .order_by(*_ACTIVITY_ORDER)
        .offset(bindparam("offset", type_=BigInteger))
        .limit(literal_int(1))
    )


# From this many entries on, `page=N` finds its start by adding up days (below) rather than by
# counting index entries. On the benchmark data (all tickets, EXPLAIN ANALYZE, median of 7):
# counting took 0.15 ms for 1,000 entries, 0.24 for 2,000, 0.54 for 5,000 and 2.0 for 20,000;
# the days 0.30, 0.38, 0.20 and 0.24 ms (near the top, the newest days are the busiest, and the
# count inside one of them is the larger part).
DAYS_FROM_OFFSET = 3_000
_DAYS = support_ticket_activity_days.c
# The sets of filters support_ticket_activity_days counts (migration 0006's grouping sets): no
# filter, any one, any two.
_COUNTED_VIEWS = {
    frozenset(view) for size in range(3) for view in combinations(ACTIVITY_DAY_COLUMNS, size)
}


def _filtered_columns(shape: _Shape) -> frozenset[str]:
    columns = {
        "status": shape.status,
        "priority": shape.priority,
        "category_id": shape.category,
        "assigned_counselor_id": shape.assigned is not Assigned.ALL,
    }
    return frozenset(name for name, filtered in columns.items() if filtered)


def _counts_days(shape: _Shape) -> bool:
    """Whether support_ticket_activity_days counts this view (no search, and one of its sets
    of filters)."""
    return shape.search is None and _filtered_columns(shape) in _COUNTED_VIEWS


def _days_of_view(shape: _Shape, periods: bool) -> tuple[list[ColumnElement[bool]], list[Any]]:
    """The rows of support_ticket_activity_days that count `shape`'s view by day, or by 30-day
    period when `periods`: their `grouping`, the view's filter values (constants, as in the
    ticket statements), NULL in the other columns. And the order that reads them newest first
    straight from the index: PostgreSQL does not take `IS NULL` for a constant, so those
    columns lead the order as they lead the index (an `= value` column needs no place in it),
    or it would sort what the index returns in order."""
    filtered = _filtered_columns(shape)
    grouping = sum(
        1 << (len(ACTIVITY_DAY_COLUMNS) - 1 - i)
        for i, name in enumerate(ACTIVITY_DAY_COLUMNS)
        if name not in filtered
    )
    if periods:
        grouping += ACTIVITY_PERIOD_BIT
    values = {
        "status": constant("status"),
        "priority": constant("priority"),
        "category_id": constant("category_id"),
        "assigned_counselor_id": None
        if shape.assigned is Assigned.UNASSIGNED
        else constant("mine"),
    }
    conditions = [_DAYS.grouping == literal_int(grouping)]
    order: list[Any] = []
    for name in ACTIVITY_DAY_COLUMNS:
        value = values[name] if name in filtered else None
        column = _DAYS[name]
        if value is None:
            conditions.append(column.is_(None))
            order.append(column)
        else:
            conditions.append(column == value)
    return conditions, [*order, _DAYS.day.desc()]


def _first_span_past(shape: _Shape, period: Any = None) -> Select[Any]:
    """The newest 30-day period where the view's running sum of tickets passes the offset, with
    the tickets in newer periods (`newer`). Given such a `period`, the same for its days,
    counted on from its `newer`.

    The rows come straight from the index (its INCLUDE holds `tickets`) in the window's order,
    so nothing is sorted or grouped, and LIMIT 1 stops the scan at the span found. A span may
    still have several rows (not yet compacted); the default RANGE frame sums them together,
    so each carries the running sum through its whole span, and its own tickets (one index
    lookup) are taken off again to give the tickets before it."""
    offset = bindparam("offset", type_=BigInteger)
    view, order = _days_of_view(shape, periods=period is None)
    nulls = order[:-1]  # the columns NULL in this view; `order` ends with the day, newest first
    running = func.sum(_DAYS.tickets).over(order_by=order)
    ranked = select(*nulls, _DAYS.day, running.label("running")).where(*view)
    if period is not None:
        # Hours, not days: in a session time zone with daylight saving, 30 calendar days can
        # last an hour more or less, and the counts' periods never do.
        hours: ColumnElement[Any] = literal_column(f"interval '{ACTIVITY_PERIOD_DAYS * 24} hours'")
        end = period.c.day + hours
        ranked = ranked.where(_DAYS.day >= period.c.day, _DAYS.day < end).correlate(period)
    spans = ranked.subquery()
    passed = spans.c.running if period is None else period.c.newer + spans.c.running
    own = select(func.sum(_DAYS.tickets)).where(*view, _DAYS.day == spans.c.day).scalar_subquery()
    return (
        select(spans.c.day, (passed - own).label("newer"), own.label("tickets"))
        .where(passed > offset)
        .order_by(*(spans.c[c.name] for c in nulls), spans.c.day.desc())
        .limit(literal_int(1))
    )


@lru_cache(maxsize=32)
def _day_anchor_statement(shape: _Shape) -> Select[datetime, int]:
    """Page N's first key for a view `_counts_days` covers, at any depth in about the same time.

    The view's 30-day periods, newest first, until their running sum of tickets passes the
    offset; then that period's days the same way; then, inside the day found, the ticket at the
    rest of the offset, counted from whichever end of the day is nearer (the day's count says
    how far the other end is). Three years are about 37 periods and at most 30 days. The counts are
    kept by triggers in the tickets' own transactions, so in this one statement (one snapshot)
    they agree with the index exactly.
    """
    offset = bindparam("offset", type_=BigInteger)
    period = _first_span_past(shape).subquery("period")
    day = _first_span_past(shape, period).lateral("day")
    in_day = select(SupportTicket.last_activity_at, SupportTicket.id).where(
        *shape.conditions(),
        SupportTicket.last_activity_at >= day.c.day,
        # 24 hours, not '1 day': a calendar day in a session time zone with daylight saving
        # lasts 23 or 25 hours, and the counts' days are always 24.
        SupportTicket.last_activity_at < day.c.day + literal_column("interval '24 hours'"),
    )
    rest = offset - day.c.newer  # the day's tickets before the page, from its newest
    # Only one of the two runs: their conditions name no column of their own, so PostgreSQL
    # tests them once, before reading anything. A day holds ~1,800 tickets on the benchmark
    # data; this reads at most half of them.
    newest_first = (
        in_day.where(rest * literal_int(2) < day.c.tickets)
        .order_by(*_ACTIVITY_ORDER)
        .offset(rest)
        .limit(literal_int(1))
    )
    oldest_first = (
        in_day.where(rest * literal_int(2) >= day.c.tickets)
        .order_by(SupportTicket.last_activity_at.asc(), SupportTicket.id.asc())
        .offset(day.c.tickets - literal_int(1) - rest)
        .limit(literal_int(1))
    )
    inside = union_all(newest_first, oldest_first).lateral("inside")
    return (
        select(inside.c.last_activity_at, inside.c.id)
        .select_from(period)
        .join(day, literal_column("true"))
        .join(inside, literal_column("true"))
    )


def _page_keys(shape: _Shape, position: _Position, limit: int) -> Select[Any]:
    """The ids of the page's `limit` + 1 tickets, in activity order from its position."""
    key = tuple_(SupportTicket.last_activity_at, SupportTicket.id)
    keyset: list[ColumnElement[bool]] = []
    if position is not _Position.FIRST:
        start = _cursor_key()
        keyset.append(key < start if position is _Position.AFTER else key <= start)
    return (
        select(SupportTicket.id)
        .where(*shape.conditions(), *keyset)
        .order_by(*_ACTIVITY_ORDER)
        .limit(literal_int(limit + 1))
    )


# A walked search's page is read as a collected one's: by the ids the walk found.
_BY_IDS = _Shape(
    status=False, priority=False, category=False, assigned=Assigned.ALL, search=SearchMode.COLLECT
)


@lru_cache(maxsize=64)
def _walk_statement(shape: _Shape, position: _Position, limit: int) -> Select[Any]:
    """A walked search's page ids, in a statement of its own: only it has the term in its SQL
    (`_Search.in_the_sql`), so each term's own plan is made for it alone (~0.2 ms on the
    benchmark data, against 0.9-1.3 ms for the whole page with its joins), and the page that
    reads the ids (`_BY_IDS`) is one statement for every term."""
    ids = func.array(_page_keys(shape, position, limit).scalar_subquery(), type_=ARRAY(BigInteger))
    return select(ids)


@lru_cache(maxsize=64)
def _name_word_page_statement(search: _Search, cap: int, after: bool, limit: int) -> Select[Any]:
    """A page of a word too common in names to collect (SearchMode.NAME_WORD), in one
    statement (`_told_with_the_page`): the name's tickets from each name-word index (migration
    0011), newest activity first, merged with the other sources' matches, collected up to the
    cap. `offset` entries are skipped (`page=N`), or with `after` the page starts after a
    cursor's key, in every list. Only for an inbox without other filters (`_search_mode`'s
    `lists`).

    Each list reads only as far as the page reaches, so a common first name costs what a rare
    one does (0.35 ms against 2.2 ms for walking the inbox, on the benchmark data). A ticket
    can be in several lists (a long name, the name and a message); UNION lists it once. Run
    with the collection's kept plans: how the lists are read does not depend on the word.
    """
    collected = search.capped_ids(cap, names=False)
    others = select(*(ids.label(f"source_{n}") for n, ids in enumerate(collected))).cte("others")
    sources = list(others.c)
    matched: ColumnElement[Any] = sources[0]
    for more in sources[1:]:
        matched = matched.concat(more)
    word = func.tsvector_to_array(
        func.to_tsvector(_SIMPLE, bindparam("q", type_=String)), type_=ARRAY(Text)
    )[literal_int(1)]
    keyset = _after_cursor(SupportTicket.last_activity_at, SupportTicket.id) if after else []
    offset = bindparam("offset", type_=BigInteger)
    reach = offset + literal_int(limit + 1)

    def listed(*match: ColumnElement[bool], ordered: bool = True) -> Select[int, datetime]:
        found = select(SupportTicket.id, SupportTicket.last_activity_at).where(*match, *keyset)
        return found.order_by(*_ACTIVITY_ORDER).limit(reach) if ordered else found

    lists = [
        listed(literal_column(name_word(place), Text) == word)
        for place in range(1, NAME_WORD_PLACES + 1)
    ]
    lists.append(
        listed(
            literal_column(NAME_WORD_COUNT) > literal_int(NAME_WORD_PLACES),
            SupportTicket.name_vector.bool_op("@@")(_Search(admission=False).tsquery),
        )
    )
    # The cast makes it one array to look up, as a bound array would be, not a subquery's rows.
    others_matched = cast(select(matched).select_from(others).scalar_subquery(), ARRAY(BigInteger))
    lists.append(listed(SupportTicket.id == any_(others_matched), ordered=False))
    matches = union(*lists).subquery("matches")
    sizes = postgresql.array([func.cardinality(ids) for ids in sources])
    told = select(sizes.label("source_sizes"), null().label("matched")).select_from(others)
    return _told_with_the_page(told, matches, offset, limit)


@lru_cache(maxsize=64)
def _collected_page_statement(search: _Search, cap: int, after: bool, limit: int) -> Select[Any]:
    """A page of a term collected without other filters, in one statement
    (`_told_with_the_page`): each source's matches up to the cap, as `_Search.capped_ids`
    collects them but with each ticket's last activity, which the ticket-side sources read
    anyway; the message source's tickets looked up for theirs. The page is then cut from
    those in inbox order, and how many tickets matched in all is counted from them.

    Collecting first and reading the page in a second statement cost a full name's request
    two round trips, and the web process decoded, sorted and sliced its 324 keys (~0.3 ms of
    CPU together with the second round trip's, docs/benchmarks.md, session 12)."""
    found = [
        source.add_columns(SupportTicket.last_activity_at)
        .limit(literal_int(cap + 1))
        .cte(f"found_{n}")
        for n, source in enumerate(search._ticket_sources(SupportTicket.id.label("id")))
    ]
    by_message = (
        select(SupportMessage.ticket_id.label("id"))
        .where(search.body_matches())
        .limit(literal_int(cap + 1))
        .cte("found_by_message")
    )
    message_ids = func.array(select(by_message.c.id).scalar_subquery(), type_=ARRAY(BigInteger))
    message_tickets = select(SupportTicket.id, SupportTicket.last_activity_at).where(
        SupportTicket.id == any_(message_ids)
    )
    matches = union(*(select(f.c.id, f.c.last_activity_at) for f in found), message_tickets).cte(
        "matches"
    )
    sizes = postgresql.array(
        [select(func.count()).select_from(f).scalar_subquery() for f in (*found, by_message)]
    )
    matched = select(func.count()).select_from(matches).scalar_subquery()
    told = select(sizes.label("source_sizes"), matched.label("matched"))
    keyset = _after_cursor(matches.c.last_activity_at, matches.c.id) if after else []
    offset = bindparam("offset", type_=BigInteger)
    return _told_with_the_page(told, select(matches).where(*keyset).subquery(), offset, limit)


def _after_cursor(at: Any, ticket_id: Any) -> list[ColumnElement[bool]]:
    """Keys after a cursor's, in inbox order."""
    return [tuple_(at, ticket_id) < _cursor_key()]


def _cursor_key() -> ColumnElement[Any]:
    """A page's start (`after_at`, `after_id`): a cursor's key, or the one `page=N` found."""
    return tuple_(
        bindparam("after_at", type_=SupportTicket.last_activity_at.type),
        bindparam("after_id", type_=BigInteger),
    )


def _told_with_the_page(
    told: Select[Any], matches: Any, offset: ColumnElement[int], limit: int
) -> Select[Any]:
    """`told` (one row: `source_sizes`, how many tickets each source found, and `matched`,
    how many in all when counted) beside the rows of the page cut from `matches` (id and
    last_activity_at), newest activity first. Always at least one row, so that an empty page
    still tells whether a source went past the cap."""
    keys = (
        select(matches.c.id)
        .order_by(matches.c.last_activity_at.desc(), matches.c.id.desc())
        .offset(offset)
        .limit(literal_int(limit + 1))
        .subquery("keys")
    )
    summary = told.subquery("told")
    page = _rows_of(keys).subquery("page_rows")
    return (
        select(*summary.c, *page.c)
        .select_from(summary.outerjoin(page, literal_column("true")))
        .order_by(page.c.last_activity_at.desc(), page.c.id.desc())
    )


def _rows_of(keys: Any) -> Select[Any]:
    """The inbox rows of the tickets whose ids `keys` holds, newest activity first: their rows
    by primary key, then the joins and unread counts for just those rows."""
    page_rows = select(SupportTicket).join(keys, keys.c.id == SupportTicket.id).subquery("page")
    paged = aliased(SupportTicket, page_rows)
    return _ticket_select(paged).order_by(paged.last_activity_at.desc(), paged.id.desc())


@lru_cache(maxsize=512)
def _page_statement(shape: _Shape, position: _Position, limit: int, count: bool) -> Select[Any]:
    # The page's keys first (index-only, whatever the filters), then its rows.
    statement = _rows_of(_page_keys(shape, position, limit).subquery("keys"))
    if count:
        statement = statement.add_columns(_bounded_count(shape).label("bounded_total"))
    return statement


def _bounded_count(shape: _Shape) -> ScalarSelect[int]:
    """How many tickets match, counted up to EXACT_COUNT_LIMIT + 1 (an index-only scan)."""
    bounded = (
        select(literal_column("1"))
        .select_from(SupportTicket)
        .where(*shape.conditions())
        .limit(literal_int(EXACT_COUNT_LIMIT + 1))
        .subquery()
    )
    return select(func.count()).select_from(bounded).scalar_subquery()


@lru_cache(maxsize=256)
def _count_statements(shape: _Shape) -> tuple[Select[Any], Select[Any]]:
    """The bounded count on its own (for an empty page), and the full count (for EXPLAIN)."""
    everything: Select[Any] = (
        select(literal_column("1")).select_from(SupportTicket).where(*shape.conditions())
    )
    return select(_bounded_count(shape)), everything


async def ticket_page(
    source: Source,
    counselor_id: int,
    filters: InboxFilters,
    *,
    page: int = 1,
    limit: int = TICKETS_PER_PAGE,
    cursor: str | None = None,
    after_cap: SearchMode | None = None,
) -> Page[TicketView]:
    """One page of the inbox, newest activity first (see the module docstring for the plan).
    `after_cap`: how a search's page statement said to find its term instead (the page is then
    asked for again, that way)."""
    fingerprint = filters.fingerprint()
    past_the_end = False  # page=N beyond the last page: no page statement to run
    params = _params(filters, counselor_id)
    search: SearchMode | None = None
    search_estimate = 0
    found: list[int] | None = None  # the ids a collection found, for the page to read
    collected: int | None = None  # how many tickets a collected term matches, when known
    if filters.q:
        # Without other filters the page's own statement finds the term's matches (a
        # collection or a name's lists): one round trip for the whole page.
        unfiltered = filters == InboxFilters(q=filters.q)
        search, search_estimate, found = await _search_mode(
            source, filters.q, unfiltered, in_page=unfiltered, then=after_cap
        )
        if found is not None:
            params["matched"] = found
    in_one = search in (SearchMode.COLLECT, SearchMode.NAME_WORD) and found is None
    many_students = search is SearchMode.WALK and await _many_students(
        source, filters.q or "", params
    )
    shape = _Shape.of(filters, search, many_students)
    viewer = counselor_id if filters.assigned is Assigned.MINE else ""
    estimate_key = f"tickets:{fingerprint}:{viewer}"
    # A common search term is not counted: the planner's estimate of its matches stands in. Nor
    # are filters that went past the exact-count limit within the last minute: their estimate
    # stands in until it expires, saving each page a scan of EXACT_COUNT_LIMIT index entries.
    estimated_search = search in (SearchMode.WALK, SearchMode.NAME_WORD)
    known_large = None if estimated_search or in_one else remembered_estimate(estimate_key)
    count = not estimated_search and known_large is None and not in_one

    if cursor is not None:
        position = decode_cursor(cursor, fingerprint)
        try:
            params["after_at"] = datetime.fromisoformat(position.key[0])
            params["after_id"] = int(position.key[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(DAMAGED_CURSOR) from None
        page = position.page
        where = _Position.AFTER
    elif page > 1:
        where = _Position.FROM
        if not in_one:  # that statement skips the offset itself
            offset = (page - 1) * limit
            anchor = (
                _day_anchor_statement(shape)
                if offset >= DAYS_FROM_OFFSET and _counts_days(shape)
                else _anchor_statement(shape)
            )
            past_the_end = not await find_page_start(source, anchor, params, offset)
    else:
        where = _Position.FIRST
    rows: list[Record]
    if past_the_end:
        rows = []
    elif in_one:
        assert filters.q is not None and search is not None
        found_in_one = await _page_in_one_statement(
            source, filters.q, search, where, page, limit, params
        )
        rows, collected, then = found_in_one
        if then is not None:  # a source past the cap: walked or listed by word from now on
            return await ticket_page(
                source, counselor_id, filters, page=page, limit=limit, cursor=cursor, after_cap=then
            )
    elif search is SearchMode.WALK:
        # The page's ids first, from the walk's own statement (planned for the term), then
        # read in one statement that is the same for every term.
        [(page_ids,)] = await fetch_records(source, _walk_statement(shape, where, limit), params)
        page_of = _page_statement(_BY_IDS, _Position.FIRST, limit, False)
        by_ids = {"me": counselor_id, "matched": page_ids}
        rows = await fetch_records(source, page_of, by_ids) if page_ids else []
    else:
        rows = await fetch_records(source, _page_statement(shape, where, limit, count), params)

    has_next = len(rows) > limit
    items = [_ticket_view(row) for row in rows[:limit]]
    bounded, everything = _count_statements(shape)
    if estimated_search:
        total, estimated = search_estimate, True
    elif collected is not None:
        total, estimated = collected, False
    elif known_large is not None:
        total, estimated = max(known_large, EXACT_COUNT_LIMIT + 1), True
    else:
        counted = (
            rows[0]["bounded_total"]
            if rows
            else (await fetch_records(source, bounded, params))[0][0]
        )
        if counted <= EXACT_COUNT_LIMIT:
            total, estimated = counted, False
        else:
            # Nothing was remembered under the key (`known_large`): found again here.
            estimate = await planner_rows(source, everything, params)
            remember_estimate(estimate_key, estimate)
            total, estimated = max(estimate, counted), True
    next_cursor = None
    if has_next and items:
        last = items[-1]
        next_cursor = encode_cursor(
            Cursor(page=page + 1, key=(last.last_activity_at, last.id), fingerprint=fingerprint)
        )
    return Page(
        items=items,
        page=page,
        limit=limit,
        total=total,
        total_is_estimate=estimated,
        has_next=has_next,
        next_cursor=next_cursor,
    )


async def _page_in_one_statement(
    source: Source,
    text: str,
    search: SearchMode,
    where: _Position,
    page: int,
    limit: int,
    params: dict[str, Any],
) -> tuple[list[Record], int | None, SearchMode | None]:
    """A search's page without other filters in one statement: the page's rows; for a
    collected term, how many tickets it matches; and when a source went past the cap, how to
    find the term instead (the page is then wrong; `_past_the_cap`)."""
    terms = _Search.of(text)
    after = where is _Position.AFTER
    params["offset"] = (page - 1) * limit if where is _Position.FROM else 0
    if search is SearchMode.NAME_WORD:
        statement = _name_word_page_statement(terms, SEARCH_COLLECT_CAP, after, limit)
    else:
        statement = _collected_page_statement(terms, SEARCH_COLLECT_CAP, after, limit)
    rows = await fetch_records(source, statement, params)
    told = rows[0]
    sizes = list(told["source_sizes"])
    if search is SearchMode.NAME_WORD:
        sizes.insert(1, 0)  # the names are listed, not collected
    then = _past_the_cap(text, terms, sizes, lists=True)
    return (rows if told["id"] is not None else []), told["matched"], then


def media_url(message_id: int) -> str:
    return f"/api/dashboard/support/messages/{message_id}/media"


_DELIVERY = {
    NotificationStatus.PENDING: Delivery.QUEUED,
    NotificationStatus.SENDING: Delivery.QUEUED,
    NotificationStatus.SENT: Delivery.SENT,
    NotificationStatus.FAILED: Delivery.FAILED,
    NotificationStatus.CANCELLED: Delivery.FAILED,
}


def _message_columns(source: Any) -> list[Any]:
    return [
        source.id,
        source.ticket_id,
        source.sender_type,
        source.counselor_id,
        Counselor.full_name.label("counselor_name"),
        source.body,
        source.is_internal,
        source.media_kind,
        source.media_file_name,
        source.media_mime_type,
        source.created_at,
        source.notification_id,
        Notification.status.label("notification_status"),
        Notification.last_error,
    ]


def _message_view(row: Record) -> MessageView:
    delivery = None
    notification_status = row["notification_status"]
    if notification_status is not None:
        status = _DELIVERY[NotificationStatus(notification_status)]
        error = row["last_error"] if status is Delivery.FAILED else None
        if notification_status == NotificationStatus.CANCELLED:
            error = error or "Delivery was cancelled."
        delivery = DeliveryView(status=status, error=error, notification_id=row["notification_id"])
    counselor_id = row["counselor_id"]
    media_kind = row["media_kind"]
    return MessageView(
        id=row["id"],
        ticket_id=row["ticket_id"],
        sender_type=_SENDERS[row["sender_type"]],
        counselor=None
        if counselor_id is None
        else CounselorRef(id=counselor_id, full_name=row["counselor_name"]),
        body=row["body"],
        is_internal=row["is_internal"],
        media=None
        if media_kind is None
        else MediaView(
            kind=media_kind,
            file_name=row["media_file_name"],
            mime_type=row["media_mime_type"],
            url=media_url(row["id"]),
        ),
        created_at=row["created_at"],
        delivery=delivery,
    )


_ONE_MESSAGE = (
    select(*_message_columns(SupportMessage))
    .outerjoin(Counselor, Counselor.id == SupportMessage.counselor_id)
    .outerjoin(Notification, Notification.id == SupportMessage.notification_id)
    .where(SupportMessage.id == bindparam("message_id"))
)


async def get_message_view(session: AsyncSession, message_id: int) -> MessageView:
    rows = await fetch_records(session, _ONE_MESSAGE, {"message_id": message_id})
    if not rows:
        raise NotFound(f"Message {message_id} does not exist.")
    return _message_view(rows[0])


def _messages_fingerprint(ticket_id: int) -> str:
    return hashlib.blake2b(f"messages:{ticket_id}".encode(), digest_size=6).hexdigest()


@lru_cache(maxsize=256)
def _message_page_statement(before: bool, offset: bool, limit: int) -> Select[Any]:
    """The ticket (for its message_count, and to tell "no such ticket" from "no messages")
    LEFT JOIN LATERAL the page: newest first from (ticket_id, id DESC), each message with its
    sender and its outbox row."""
    conditions: list[ColumnElement[bool]] = [SupportMessage.ticket_id == SupportTicket.id]
    if before:
        conditions.append(SupportMessage.id < bindparam("before", type_=BigInteger))
    if offset:
        # As for the inbox: find the page's first id by an index-only scan, then read from it.
        anchor = (
            select(SupportMessage.id)
            .where(SupportMessage.ticket_id == bindparam("ticket_id"), *conditions[1:])
            .order_by(SupportMessage.id.desc())
            .offset(bindparam("offset", type_=BigInteger))
            .limit(literal_int(1))
            .scalar_subquery()
        )
        conditions.append(SupportMessage.id <= anchor)
    newest = (
        select(SupportMessage)
        .where(*conditions)
        .order_by(SupportMessage.id.desc())
        .limit(literal_int(limit + 1))
        .lateral("m")
    )
    m = aliased(SupportMessage, newest)
    return (
        select(SupportTicket.message_count, *_message_columns(m))
        .select_from(SupportTicket)
        .outerjoin(newest, literal_column("true"))
        .outerjoin(Counselor, Counselor.id == m.counselor_id)
        .outerjoin(Notification, Notification.id == m.notification_id)
        .where(SupportTicket.id == bindparam("ticket_id"))
        .order_by(m.id.desc())
    )


async def message_page(
    source: Source,
    ticket_id: int,
    *,
    page: int = 1,
    limit: int = MESSAGES_PER_PAGE,
    before: int | None = None,
    cursor: str | None = None,
) -> Page[MessageView]:
    """Page `page` of a ticket's messages counted from the newest (or from `before`), returned
    oldest first like a chat shows them; `next_cursor` continues with older ones.

    One statement; the total is the ticket's message_count (exact, kept with every message).
    """
    fingerprint = _messages_fingerprint(ticket_id)
    params: dict[str, Any] = {"ticket_id": ticket_id}
    if cursor is not None:
        if before is not None:
            raise InvalidInput("Give either cursor or before, not both.")
        position = decode_cursor(cursor, fingerprint)
        try:
            before = int(position.key[0])
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(DAMAGED_CURSOR) from None
        page = position.page
    elif page > 1:
        params["offset"] = (page - 1) * limit
    if before is not None:
        params["before"] = before
    statement = _message_page_statement(before is not None, "offset" in params, limit)
    rows = await fetch_records(source, statement, params)
    if not rows:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    total = rows[0]["message_count"]
    found = [row for row in rows if row["id"] is not None]
    has_next = len(found) > limit
    items = [_message_view(row) for row in reversed(found[:limit])]
    next_cursor = None
    if has_next and items:
        next_cursor = encode_cursor(
            Cursor(page=page + 1, key=(items[0].id,), fingerprint=fingerprint)
        )
    return Page(
        items=items,
        page=page,
        limit=limit,
        total=total,
        total_is_estimate=False,
        has_next=has_next,
        next_cursor=next_cursor,
    )

"""The queries behind the dashboard's appointment list, calendar and conflict lists.

List (`appointment_page`): one statement per page (two for `page=N`) — the page's keys from
the index that fits the filters (`ix_appointments_starts`, `ix_appointments_counselor_starts`,
`ix_appointments_status_starts`), by a scan that stops after `limit + 1` entries; then those
rows by primary key joined with their counselor and student; plus a bounded count for the total.
No N+1: 100 appointments cost what 1 costs.
- Keyset cursors on (starts_at, id), encoded like the support inbox's (`support/repository.py`):
  the next page starts right there in the index, at any depth.
- `page=N` without a cursor finds page N's first key with an index scan (OFFSET over index
  entries, not over joined rows; a statement of its own), then reads the page from that key as
  a cursor would.
- Totals: exact up to EXACT_COUNT_LIMIT, beyond that the planner's estimate (cached a minute).

Statements are built once per shape (which filters, which direction, how the page is found,
its size) and cached; filter values are constants the planner sees (a status is skewed: most
appointments end completed), keys and time bounds are bound parameters.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from asyncpg import Record
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    ScalarSelect,
    Select,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from counseldesk.appointments.models import (
    ACTIVE_STATUSES,
    Absence,
    Appointment,
    AppointmentStatus,
    CanceledBy,
    ClosedDay,
)
from counseldesk.db.paging import (
    DAMAGED_CURSOR,
    EXACT_COUNT_LIMIT,
    MAX_PAGE_SIZE,
    Cursor,
    Page,
    constant,
    decode_cursor,
    encode_cursor,
    execute_rows,
    find_page_start,
    literal_int,
    planner_rows,
    remember_estimate,
    remembered_estimate,
)
from counseldesk.db.records import fetch_records
from counseldesk.errors import InvalidInput, NotFound
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student

APPOINTMENTS_PER_PAGE = 20
MAX_LIST_PAGE_SIZE = MAX_PAGE_SIZE
# Absences listed at once: far more than an office plans ahead.
MAX_ABSENCES = 200


class Order(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


# --- what the queries return -------------------------------------------------------------------


@dataclass(frozen=True)
class CounselorRef:
    id: int
    full_name: str


@dataclass(frozen=True)
class StudentRef:
    id: int
    full_name: str
    admission_no: str


@dataclass(frozen=True)
class AppointmentView:
    id: int
    status: AppointmentStatus
    starts_at: datetime
    ends_at: datetime
    local_date: date
    local_start: str
    local_end: str
    counselor: CounselorRef
    student: StudentRef
    reason: str
    cancel_reason: str | None
    canceled_by: CanceledBy | None
    reschedule_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AbsenceView:
    id: int
    counselor: CounselorRef
    starts_on: date
    ends_on: date
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class ClosedDayView:
    day: date
    reason: str


@dataclass(frozen=True)
class AppointmentFilters:
    """Which appointments a list shows; time bounds are instants (from inclusive, before
    exclusive), already turned from office-local days by the caller."""

    status: AppointmentStatus | None = None
    counselor_id: int | None = None
    student_id: int | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    order: Order = Order.ASC

    def fingerprint(self) -> str:
        """Identifies the result set a cursor belongs to."""
        canonical = json.dumps(
            [
                self.status and self.status.value,
                self.counselor_id,
                self.student_id,
                self.starts_from and self.starts_from.isoformat(),
                self.starts_before and self.starts_before.isoformat(),
                self.order.value,
            ]
        )
        return hashlib.blake2b(f"appointments:{canonical}".encode(), digest_size=6).hexdigest()


# --- one appointment row, with its people -------------------------------------------------------


def _select(appointment: Any) -> Select[Any]:
    """An appointment row (Appointment or an alias of a page subquery) with its counselor's and
    student's names: two primary-key lookups per row."""
    return (
        select(
            appointment.id,
            appointment.status,
            appointment.starts_at,
            appointment.ends_at,
            appointment.counselor_id,
            Counselor.full_name.label("counselor_name"),
            appointment.student_id,
            Student.full_name.label("student_name"),
            Student.admission_no,
            appointment.reason,
            appointment.cancel_reason,
            appointment.canceled_by,
            appointment.reschedule_count,
            appointment.created_at,
            appointment.updated_at,
        )
        .select_from(appointment)
        .join(Counselor, Counselor.id == appointment.counselor_id)
        .join(Student, Student.id == appointment.student_id)
    )


def _view(row: Record, tz: ZoneInfo) -> AppointmentView:
    starts_at, ends_at = row["starts_at"], row["ends_at"]
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    canceled_by = row["canceled_by"]
    return AppointmentView(
        id=row["id"],
        status=AppointmentStatus(row["status"]),
        starts_at=starts_at,
        ends_at=ends_at,
        local_date=start.date(),
        local_start=f"{start:%H:%M}",
        local_end=f"{end:%H:%M}",
        counselor=CounselorRef(id=row["counselor_id"], full_name=row["counselor_name"]),
        student=StudentRef(
            id=row["student_id"], full_name=row["student_name"], admission_no=row["admission_no"]
        ),
        reason=row["reason"],
        cancel_reason=row["cancel_reason"],
        canceled_by=None if canceled_by is None else CanceledBy(canceled_by),
        reschedule_count=row["reschedule_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_ONE = _select(Appointment).where(Appointment.id == bindparam("appointment_id", type_=BigInteger))
_SOME = (
    _select(Appointment)
    .where(Appointment.id.in_(bindparam("ids", expanding=True)))
    .order_by(Appointment.starts_at, Appointment.id)
)


async def get_appointment_view(
    session: AsyncSession, appointment_id: int, tz: ZoneInfo
) -> AppointmentView:
    rows = await fetch_records(session, _ONE, {"appointment_id": appointment_id})
    if not rows:
        raise NotFound(f"There is no appointment {appointment_id}.")
    return _view(rows[0], tz)


async def appointment_views(
    session: AsyncSession, appointment_ids: list[int], tz: ZoneInfo
) -> list[AppointmentView]:
    """Several appointments in one statement, in time order."""
    if not appointment_ids:
        return []
    rows = await fetch_records(session, _SOME, {"ids": list(appointment_ids)})
    return [_view(row, tz) for row in rows]


# --- the list -----------------------------------------------------------------------------------


class _Position(enum.Enum):
    FIRST = "first"  # page 1
    AFTER = "after"  # a cursor: strictly after its key
    FROM = "from"  # page=N: from its first key (found by _anchor_statement) on


@dataclass(frozen=True)
class _Shape:
    """Which filters a request has (not their values): the cache key of its statements."""

    status: bool
    counselor: bool
    student: bool
    starts_from: bool
    starts_before: bool

    @classmethod
    def of(cls, filters: AppointmentFilters) -> _Shape:
        return cls(
            status=filters.status is not None,
            counselor=filters.counselor_id is not None,
            student=filters.student_id is not None,
            starts_from=filters.starts_from is not None,
            starts_before=filters.starts_before is not None,
        )

    def conditions(self) -> tuple[ColumnElement[bool], ...]:
        return _conditions(self)


_INSTANT = DateTime(timezone=True)


@lru_cache(maxsize=64)
def _conditions(shape: _Shape) -> tuple[ColumnElement[bool], ...]:
    conditions: list[ColumnElement[bool]] = []
    if shape.status:
        conditions.append(Appointment.status == constant("status"))
    if shape.counselor:
        conditions.append(Appointment.counselor_id == constant("counselor_id"))
    if shape.student:
        conditions.append(Appointment.student_id == constant("student_id"))
    if shape.starts_from:
        conditions.append(Appointment.starts_at >= bindparam("starts_from", type_=_INSTANT))
    if shape.starts_before:
        conditions.append(Appointment.starts_at < bindparam("starts_before", type_=_INSTANT))
    return tuple(conditions)


def _order(order: Order) -> tuple[ColumnElement[Any], ...]:
    if order is Order.DESC:
        return (Appointment.starts_at.desc(), Appointment.id.desc())
    return (Appointment.starts_at.asc(), Appointment.id.asc())


@lru_cache(maxsize=256)
def _anchor_statement(shape: _Shape, order: Order) -> Select[datetime, int]:
    """Page N's first key: skip (N - 1) * limit entries of the index, reading only keys.

    Its own statement, as for the inbox (support/repository.py, `_anchor_statement`): a prepared
    statement with an OFFSET never gets a cached plan, and the page's joins would be planned
    again on every request.
    """
    return (
        select(Appointment.starts_at, Appointment.id)
        .where(*shape.conditions())
        .order_by(*_order(order))
        .offset(bindparam("offset", type_=BigInteger))
        .limit(literal_int(1))
    )


@lru_cache(maxsize=512)
def _page_statement(
    shape: _Shape, order: Order, position: _Position, limit: int, count: bool
) -> Select[Any]:
    conditions = shape.conditions()
    key = tuple_(Appointment.starts_at, Appointment.id)
    descending = order is Order.DESC
    keyset: list[ColumnElement[bool]] = []
    if position is not _Position.FIRST:
        start = tuple_(
            bindparam("after_at", type_=_INSTANT), bindparam("after_id", type_=BigInteger)
        )
        if position is _Position.AFTER:
            keyset.append(key < start if descending else key > start)
        else:
            keyset.append(key <= start if descending else key >= start)
    # The page's keys from the index, then those rows by primary key with their people.
    keys = (
        select(Appointment.id)
        .where(*conditions, *keyset)
        .order_by(*_order(order))
        .limit(literal_int(limit + 1))
        .subquery("keys")
    )
    page_rows = select(Appointment).join(keys, keys.c.id == Appointment.id).subquery("page")
    paged = aliased(Appointment, page_rows)
    ordering = (
        (paged.starts_at.desc(), paged.id.desc())
        if descending
        else (paged.starts_at.asc(), paged.id.asc())
    )
    statement = _select(paged).order_by(*ordering)
    if count:
        statement = statement.add_columns(_bounded_count(shape).label("bounded_total"))
    return statement


def _bounded_count(shape: _Shape) -> ScalarSelect[int]:
    """How many appointments match, counted up to EXACT_COUNT_LIMIT + 1.

    Ordered like the page so that it reads the page's own index (mostly index-only) and stops
    at the limit: unordered, the planner may pick a sequential scan that filters its way to
    EXACT_COUNT_LIMIT matches — or to the end of the table when there are fewer."""
    bounded = (
        select(literal_column("1"))
        .select_from(Appointment)
        .where(*shape.conditions())
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(literal_int(EXACT_COUNT_LIMIT + 1))
        .subquery()
    )
    return select(func.count()).select_from(bounded).scalar_subquery()


@lru_cache(maxsize=64)
def _count_statements(shape: _Shape) -> tuple[Select[Any], Select[Any]]:
    """The bounded count on its own (for an empty page), and the full count (for EXPLAIN)."""
    everything: Select[Any] = (
        select(literal_column("1")).select_from(Appointment).where(*shape.conditions())
    )
    return select(_bounded_count(shape)), everything


def _params(filters: AppointmentFilters) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if filters.status is not None:
        params["status"] = filters.status
    if filters.counselor_id is not None:
        params["counselor_id"] = filters.counselor_id
    if filters.student_id is not None:
        params["student_id"] = filters.student_id
    if filters.starts_from is not None:
        params["starts_from"] = filters.starts_from
    if filters.starts_before is not None:
        params["starts_before"] = filters.starts_before
    return params


async def appointment_page(
    session: AsyncSession,
    filters: AppointmentFilters,
    tz: ZoneInfo,
    *,
    page: int = 1,
    limit: int = APPOINTMENTS_PER_PAGE,
    cursor: str | None = None,
) -> Page[AppointmentView]:
    """One page of appointments in start order (see the module docstring for the plan)."""
    fingerprint = filters.fingerprint()
    past_the_end = False  # page=N beyond the last page: no page statement to run
    params = _params(filters)
    shape = _Shape.of(filters)
    if cursor is not None:
        position = decode_cursor(cursor, fingerprint)
        try:
            after_at = datetime.fromisoformat(position.key[0])
            after_id = int(position.key[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(DAMAGED_CURSOR) from None
        if after_at.tzinfo is None:
            raise InvalidInput(DAMAGED_CURSOR)
        params["after_at"], params["after_id"] = after_at, after_id
        page = position.page
        where = _Position.AFTER
    elif page > 1:
        where = _Position.FROM
        anchor = _anchor_statement(shape, filters.order)
        past_the_end = not await find_page_start(session, anchor, params, (page - 1) * limit)
    else:
        where = _Position.FIRST
    estimate_key = f"appointments:{fingerprint}"
    # Known to be past the exact-count limit within the last minute: not counted again.
    known_large = remembered_estimate(estimate_key)
    rows: list[Record] = []
    if not past_the_end:
        rows = await fetch_records(
            session,
            _page_statement(shape, filters.order, where, limit, known_large is None),
            params,
        )

    has_next = len(rows) > limit
    items = [_view(row, tz) for row in rows[:limit]]
    if known_large is not None:
        total, estimated = max(known_large, EXACT_COUNT_LIMIT + 1), True
    else:
        bounded, everything = _count_statements(shape)
        counted = (
            rows[0]["bounded_total"]
            if rows
            else (await fetch_records(session, bounded, params))[0][0]
        )
        if counted <= EXACT_COUNT_LIMIT:
            total, estimated = int(counted), False
        else:
            # Nothing was remembered under the key (`known_large`): found again here.
            estimate = await planner_rows(session, everything, params)
            remember_estimate(estimate_key, estimate)
            total, estimated = max(estimate, int(counted)), True
    next_cursor = None
    if has_next and items:
        last = items[-1]
        next_cursor = encode_cursor(
            Cursor(page=page + 1, key=(last.starts_at, last.id), fingerprint=fingerprint)
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


# --- the calendar and conflicts -----------------------------------------------------------------


def _between(counselor: bool, active_only: bool) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [
        Appointment.starts_at >= bindparam("starts_from", type_=_INSTANT),
        Appointment.starts_at < bindparam("starts_before", type_=_INSTANT),
    ]
    if counselor:
        conditions.append(Appointment.counselor_id == bindparam("counselor_id", type_=Integer))
    if active_only:
        conditions.append(Appointment.status.in_(sorted(ACTIVE_STATUSES)))
    return _select(Appointment).where(*conditions).order_by(Appointment.starts_at, Appointment.id)


_BETWEEN = {
    (counselor, active): _between(counselor, active)
    for counselor in (False, True)
    for active in (False, True)
}


async def appointments_between(
    session: AsyncSession,
    tz: ZoneInfo,
    *,
    starts_from: datetime,
    starts_before: datetime,
    counselor_id: int | None = None,
    active_only: bool = False,
) -> list[AppointmentView]:
    """Appointments starting in [starts_from, starts_before), in time order, one statement:
    a calendar's days (every status), or what an absence or closed day collides with
    (`active_only`)."""
    params: dict[str, Any] = {"starts_from": starts_from, "starts_before": starts_before}
    if counselor_id is not None:
        params["counselor_id"] = counselor_id
    statement = _BETWEEN[(counselor_id is not None, active_only)]
    return [_view(row, tz) for row in await fetch_records(session, statement, params)]


def _absence_view(row: Any) -> AbsenceView:
    return AbsenceView(
        id=row.id,
        counselor=CounselorRef(id=row.counselor_id, full_name=row.counselor_name),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        reason=row.reason,
        created_at=row.created_at,
    )


_ABSENCE_COLUMNS = (
    select(
        Absence.id,
        Absence.counselor_id,
        Counselor.full_name.label("counselor_name"),
        Absence.starts_on,
        Absence.ends_on,
        Absence.reason,
        Absence.created_at,
    )
    .join(Counselor, Counselor.id == Absence.counselor_id)
    .order_by(Absence.starts_on, Absence.id)
)


async def absences(
    session: AsyncSession,
    *,
    counselor_id: int | None,
    first: date,
    last: date | None = None,
    limit: int = MAX_ABSENCES,
) -> list[AbsenceView]:
    """Absences that reach `first` or later (and start by `last`), with their counselors'
    names: one statement."""
    query = _ABSENCE_COLUMNS.where(Absence.ends_on >= first)
    if last is not None:
        query = query.where(Absence.starts_on <= last)
    if counselor_id is not None:
        query = query.where(Absence.counselor_id == counselor_id)
    return [_absence_view(row) for row in await execute_rows(session, query.limit(limit), {})]


async def absence_view(session: AsyncSession, absence_id: int) -> AbsenceView:
    rows = await execute_rows(session, _ABSENCE_COLUMNS.where(Absence.id == absence_id), {})
    if not rows:
        raise NotFound(f"There is no absence {absence_id}.")
    return _absence_view(rows[0])


async def closed_days(session: AsyncSession, *, first: date, last: date) -> list[ClosedDayView]:
    query = (
        select(ClosedDay.day, ClosedDay.reason)
        .where(ClosedDay.day.between(first, last))
        .order_by(ClosedDay.day)
    )
    return [ClosedDayView(row.day, row.reason) for row in await execute_rows(session, query, {})]

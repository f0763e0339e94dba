"""Rules about students: who they are, how they register, what we record of their activity."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.errors import Conflict, InvalidInput
from counseldesk.students.models import Student, UserSession

MIN_YEAR, MAX_YEAR = 1, 6
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+)*\.?$")
_ADMISSION_RE = re.compile(r"^[A-Z0-9][A-Z0-9/\-.]{2,31}$")
# Activity is written at most this often per user: every update would be a write on a hot path.
ACTIVITY_WRITE_INTERVAL_SECONDS = 60


# --- checks: each returns the clean value or raises InvalidInput -------------------------------


def check_full_name(text: str | None) -> str:
    name = " ".join((text or "").split())
    if not 2 <= len(name) <= 120 or not _NAME_RE.match(name):
        raise InvalidInput("A full name has 2 to 120 characters: letters, spaces, ' - and .")
    return name


def check_admission_no(text: str | None) -> str:
    value = "".join((text or "").split()).upper()
    # Every admission number has digits; a word ("not a number") is an answer to something else.
    if not _ADMISSION_RE.match(value) or not any(ch.isdigit() for ch in value):
        raise InvalidInput(
            "An admission number has 3 to 32 characters: letters, digits, / - ., "
            "and at least one digit."
        )
    return value


def check_year_of_study(value: str | int | None) -> int:
    try:
        year = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"Year of study is a number from {MIN_YEAR} to {MAX_YEAR}.") from None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(f"Year of study is a number from {MIN_YEAR} to {MAX_YEAR}.")
    return year


def check_phone(phone_number: str | None) -> str:
    digits = re.sub(r"[^\d]", "", phone_number or "")
    if not 6 <= len(digits) <= 15:
        raise InvalidInput("A phone number has 6 to 15 digits.")
    return f"+{digits}"


# --- queries ----------------------------------------------------------------------------------


async def get_by_telegram_id(session: AsyncSession, telegram_user_id: int) -> Student | None:
    result = await session.execute(
        select(Student).where(Student.telegram_user_id == telegram_user_id)
    )
    return result.scalar_one_or_none()


async def check_admission_no_free(
    session: AsyncSession, admission_no: str, telegram_user_id: int
) -> None:
    """Raise Conflict when the admission number belongs to another Telegram account."""
    owner = await session.scalar(
        select(Student.telegram_user_id).where(Student.admission_no == admission_no)
    )
    if owner is not None and owner != telegram_user_id:
        raise Conflict(f"The admission number {admission_no} is registered to another account.")


# --- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    telegram_user_id: int
    full_name: str
    admission_no: str
    year_of_study: int
    phone: str
    language_code: str = "en"


async def do_register_student(session: AsyncSession, reg: Registration) -> Student:
    """Create the student. An admission number bound to another account is never overwritten."""
    full_name = check_full_name(reg.full_name)
    admission_no = check_admission_no(reg.admission_no)
    year = check_year_of_study(reg.year_of_study)
    phone = check_phone(reg.phone)

    if await get_by_telegram_id(session, reg.telegram_user_id) is not None:
        raise Conflict("This Telegram account is already registered.")
    await check_admission_no_free(session, admission_no, reg.telegram_user_id)

    student = Student(
        telegram_user_id=reg.telegram_user_id,
        full_name=full_name,
        admission_no=admission_no,
        year_of_study=year,
        phone=phone,
        language_code=(reg.language_code or "en")[:8],
    )
    try:
        # A savepoint: two accounts racing for one admission number meet the unique constraint,
        # and the loser gets a Conflict instead of a broken transaction.
        async with session.begin_nested():
            session.add(student)
    except IntegrityError:
        raise Conflict(
            f"The admission number {admission_no} is registered to another account."
        ) from None
    return student


async def do_record_activity(
    session: AsyncSession,
    *,
    telegram_user_id: int,
    username: str | None,
    first_name: str | None,
    last_name: str | None,
    language_code: str | None,
) -> None:
    """Upsert the seed's `user_sessions` row for whoever sent an update.

    The row is rewritten only when a minute has passed or the profile changed, so a chatty user
    costs one cheap no-op upsert per update rather than a new row version each time.
    """
    stmt = insert(UserSession).values(
        telegram_user_id=telegram_user_id,
        username=username,
        first_name=first_name,
        last_name=last_name,
        language_code=language_code,
    )
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[UserSession.telegram_user_id],
        set_={
            "username": excluded.username,
            "first_name": excluded.first_name,
            "last_name": excluded.last_name,
            "language_code": excluded.language_code,
            "last_seen_at": func.now(),
        },
        where=(
            (
                UserSession.last_seen_at
                < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, ACTIVITY_WRITE_INTERVAL_SECONDS)
            )
            | UserSession.username.is_distinct_from(excluded.username)
            | UserSession.first_name.is_distinct_from(excluded.first_name)
            | UserSession.last_name.is_distinct_from(excluded.last_name)
        ),
    )
    await session.execute(stmt)


# --- numbers for the dashboard ----------------------------------------------------------------

# Above this many rows an exact count(*) costs tens of milliseconds on every home page view, so
# the planner's estimate (kept fresh by autovacuum's ANALYZE) is shown instead, marked "about".
EXACT_COUNT_LIMIT = 100_000

# One query either way: the scalar subquery runs only when the CASE reaches it.
_STUDENT_COUNT = text(
    """
    SELECT CASE WHEN c.reltuples >= :limit THEN c.reltuples::bigint
                ELSE (SELECT count(*) FROM students) END AS n,
           c.reltuples >= :limit AS estimated
    FROM pg_class c
    WHERE c.oid = 'students'::regclass
    """
)


@dataclass(frozen=True)
class StudentCounts:
    registered: int
    registered_is_estimate: bool
    registered_since: int
    active_on_telegram: int


async def count_students(
    session: AsyncSession, *, registered_since: datetime, active_since: datetime
) -> StudentCounts:
    total = (await session.execute(_STUDENT_COUNT, {"limit": EXACT_COUNT_LIMIT})).one()
    since = await session.scalar(
        select(func.count()).select_from(Student).where(Student.created_at >= registered_since)
    )
    active = await session.scalar(
        select(func.count())
        .select_from(UserSession)
        .where(UserSession.last_seen_at >= active_since)
    )
    return StudentCounts(
        registered=int(total.n),
        registered_is_estimate=bool(total.estimated),
        registered_since=int(since or 0),
        active_on_telegram=int(active or 0),
    )


# --- reachability (told by the outbox worker) ---------------------------------------------------


async def do_mark_unreachable(session: AsyncSession, telegram_user_id: int) -> bool:
    """Record that Telegram refused to deliver to this student (they blocked the bot or deleted
    their account); the outbox then skips them. True when a student row changed."""
    result = await session.execute(
        update(Student)
        .where(Student.telegram_user_id == telegram_user_id, Student.is_reachable.is_(True))
        .values(is_reachable=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_unreachable_ids(
    session: AsyncSession, telegram_user_ids: Collection[int]
) -> set[int]:
    """Which of these Telegram users are students known to be unreachable (one index probe each)."""
    if not telegram_user_ids:
        return set()
    rows = await session.scalars(
        select(Student.telegram_user_id).where(
            Student.telegram_user_id.in_(list(telegram_user_ids)),
            Student.is_reachable.is_(False),
        )
    )
    return set(rows.all())

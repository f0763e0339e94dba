from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.db.engine import Database
from counseldesk.errors import Conflict, InvalidInput
from counseldesk.students import service
from counseldesk.students.models import Student, UserSession


def _registration(
    telegram_user_id: int = 501, admission_no: str = "sc/100/2024"
) -> service.Registration:
    return service.Registration(
        telegram_user_id=telegram_user_id,
        full_name="  Jane   Wanjiku ",
        admission_no=admission_no,
        year_of_study=2,
        phone="+254 700-111 222",
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("jane doe", "jane doe"),
        ("  Mary-Anne  O'Neil ", "Mary-Anne O'Neil"),
        ("Ngũgĩ wa Thiong'o", "Ngũgĩ wa Thiong'o"),
    ],
)
def test_check_full_name_accepts_and_tidies(raw: str, clean: str) -> None:
    assert service.check_full_name(raw) == clean


@pytest.mark.parametrize("raw", ["", "J", "1234", "<b>x</b>", "a" * 121, None, "Jane 2"])
def test_check_full_name_rejects(raw: str | None) -> None:
    with pytest.raises(InvalidInput):
        service.check_full_name(raw)


def test_check_admission_no_normalizes() -> None:
    assert service.check_admission_no(" sc/123/2024 ") == "SC/123/2024"


@pytest.mark.parametrize(
    "raw", ["", "ab", "SC 12?", "/abc", "x" * 33, None, "not a number", "SC/ABC"]
)
def test_check_admission_no_rejects(raw: str | None) -> None:
    with pytest.raises(InvalidInput):
        service.check_admission_no(raw)


@pytest.mark.parametrize(("raw", "year"), [("1", 1), (" 6 ", 6), (3, 3)])
def test_check_year_accepts(raw: str | int, year: int) -> None:
    assert service.check_year_of_study(raw) == year


@pytest.mark.parametrize("raw", ["0", "7", "two", "", "2.5", None])
def test_check_year_rejects(raw: str | None) -> None:
    with pytest.raises(InvalidInput):
        service.check_year_of_study(raw)


async def test_register_student_stores_clean_values(session: AsyncSession) -> None:
    student = await service.do_register_student(session, _registration())
    assert (student.full_name, student.admission_no, student.phone) == (
        "Jane Wanjiku",
        "SC/100/2024",
        "+254700111222",
    )
    assert await service.get_by_telegram_id(session, 501) is student


async def test_admission_number_of_another_account_is_never_overwritten(
    session: AsyncSession,
) -> None:
    await service.do_register_student(session, _registration(501))
    with pytest.raises(Conflict):
        await service.do_register_student(session, _registration(502, "SC/100/2024"))
    owner = await session.scalar(
        select(Student.telegram_user_id).where(Student.admission_no == "SC/100/2024")
    )
    assert owner == 501
    # The failed attempt left the session usable (it ran in a savepoint).
    assert await session.scalar(select(func.count()).select_from(Student)) == 1


async def test_one_telegram_account_registers_once(session: AsyncSession) -> None:
    await service.do_register_student(session, _registration(501))
    with pytest.raises(Conflict):
        await service.do_register_student(session, _registration(501, "SC/999/2024"))


async def test_racing_registrations_for_one_admission_number_have_one_winner(
    database_url: str,
) -> None:
    # Separate connections and real commits: the unique constraint decides, not the pre-check.
    from tests.conftest import make_settings

    db = Database.from_url(database_url, make_settings())
    try:

        async def attempt(telegram_id: int) -> bool:
            try:
                async with db.unit_of_work() as s:
                    await service.do_register_student(s, _registration(telegram_id, "RACE/1/2024"))
                return True
            except Conflict:
                return False

        results = await asyncio.gather(*(attempt(9_000 + i) for i in range(8)))
        assert results.count(True) == 1
    finally:
        async with db.unit_of_work() as s:
            await s.execute(delete(Student).where(Student.admission_no == "RACE/1/2024"))
        await db.dispose()


async def test_activity_is_recorded_and_refreshed_only_when_useful(session: AsyncSession) -> None:
    for _ in range(3):
        await service.do_record_activity(
            session,
            telegram_user_id=42,
            username="jw",
            first_name="Jane",
            last_name=None,
            language_code="en",
        )
    row = await session.get(UserSession, 42)
    assert row is not None and row.username == "jw"
    await service.do_record_activity(
        session,
        telegram_user_id=42,
        username="jane_w",
        first_name="Jane",
        last_name=None,
        language_code="en",
    )
    await session.refresh(row)
    assert row.username == "jane_w"

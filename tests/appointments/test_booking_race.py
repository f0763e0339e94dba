"""Many students, one slot, real concurrent transactions: the database lets exactly one in.

These need transactions that really commit and really wait on each other, so they use their own
Database on the migrated test database and delete what they made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from counseldesk.appointments import service
from counseldesk.appointments.models import Appointment, AppointmentStatus
from counseldesk.db.engine import Database
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.telegram.models import Notification
from tests.appointments.factories import NOW, appointment_settings, give_hours, local
from tests.conftest import make_settings
from tests.factories import make_counselor, make_student

SETTINGS = appointment_settings()
RACERS = 24


@dataclass
class Arena:
    db: Database
    counselor_ids: list[int] = field(default_factory=list)
    students: list[Student] = field(default_factory=list)

    async def cleanup(self) -> None:
        ids = [s.id for s in self.students]
        async with self.db.unit_of_work() as session:
            await session.execute(
                delete(Notification).where(
                    Notification.telegram_user_id.in_([s.telegram_user_id for s in self.students])
                )
            )
            await session.execute(delete(Appointment).where(Appointment.student_id.in_(ids)))
            await session.execute(delete(Student).where(Student.id.in_(ids)))
            await session.execute(delete(Counselor).where(Counselor.id.in_(self.counselor_ids)))


@pytest.fixture
async def arena(database_url: str) -> AsyncIterator[Arena]:
    # A pool as large as the crowd, so every booking really holds its own transaction at once.
    db = Database.from_url(database_url, make_settings(db_pool_max=RACERS))
    arena = Arena(db)
    async with db.unit_of_work() as session:
        for _ in range(2):
            counselor = await make_counselor(session)
            await give_hours(session, counselor)
            arena.counselor_ids.append(counselor.id)
        arena.students = [await make_student(session) for _ in range(RACERS)]
    try:
        yield arena
    finally:
        await arena.cleanup()
        await db.dispose()


async def _race(arena: Arena, counselor_id: int | None) -> list[object]:
    starts_at = local(SETTINGS, 2030, 3, 6, 10)
    start = asyncio.Event()

    async def book(student: Student) -> object:
        await start.wait()
        try:
            async with arena.db.unit_of_work() as session:
                appointment = await service.do_book(
                    session,
                    SETTINGS,
                    student,
                    counselor_id=counselor_id,
                    starts_at=starts_at,
                    now=NOW,
                )
                return appointment.counselor_id
        except service.SlotTaken as exc:
            return exc

    tasks = [asyncio.create_task(book(student)) for student in arena.students]
    await asyncio.sleep(0)
    start.set()
    return await asyncio.gather(*tasks)


async def _held(arena: Arena) -> list[tuple[int, int]]:
    async with arena.db.unit_of_work() as session:
        rows = await session.execute(
            select(Appointment.counselor_id, func.count())
            .where(
                Appointment.student_id.in_([s.id for s in arena.students]),
                Appointment.status != AppointmentStatus.CANCELED,
            )
            .group_by(Appointment.counselor_id)
        )
        return sorted((row[0], row[1]) for row in rows)


async def test_many_students_one_counselor_slot_exactly_one_wins(arena: Arena) -> None:
    counselor_id = arena.counselor_ids[0]
    outcomes = await _race(arena, counselor_id)

    winners = [o for o in outcomes if not isinstance(o, service.SlotTaken)]
    assert winners == [counselor_id]
    losers = [o for o in outcomes if isinstance(o, service.SlotTaken)]
    assert len(losers) == RACERS - 1
    # Every loser is offered other times, none of them the one just taken.
    taken = local(SETTINGS, 2030, 3, 6, 10)
    assert all(
        o.alternatives and taken not in {a.starts_at for a in o.alternatives} for o in losers
    )
    assert await _held(arena) == [(counselor_id, 1)]


async def test_first_available_fills_each_counselor_once(arena: Arena) -> None:
    outcomes = await _race(arena, None)

    winners = sorted(o for o in outcomes if isinstance(o, int))
    assert winners == sorted(arena.counselor_ids)
    assert await _held(arena) == [(c, 1) for c in sorted(arena.counselor_ids)]


async def test_the_constraint_refuses_overlaps_whatever_the_application_checks(
    arena: Arena,
) -> None:
    """Written straight to the table, past every check: the database alone still refuses."""
    counselor_id = arena.counselor_ids[0]
    first, second = arena.students[0], arena.students[1]
    starts_at = local(SETTINGS, 2030, 3, 6, 10)
    async with arena.db.unit_of_work() as session:
        session.add(
            Appointment(
                student_id=first.id,
                counselor_id=counselor_id,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=1),
            )
        )
    with pytest.raises(IntegrityError, match="ex_appointments_counselor_time"):
        async with arena.db.unit_of_work() as session:
            session.add(
                Appointment(
                    student_id=second.id,
                    counselor_id=counselor_id,
                    # Half an hour later: overlapping, not equal, is refused too.
                    starts_at=starts_at + timedelta(minutes=30),
                    ends_at=starts_at + timedelta(minutes=90),
                )
            )
    # A canceled appointment frees its time.
    async with arena.db.unit_of_work() as session:
        await session.execute(
            update(Appointment)
            .where(Appointment.student_id == first.id)
            .values(status=AppointmentStatus.CANCELED)
        )
    async with arena.db.unit_of_work() as session:
        session.add(
            Appointment(
                student_id=second.id,
                counselor_id=counselor_id,
                starts_at=starts_at + timedelta(minutes=30),
                ends_at=starts_at + timedelta(minutes=90),
            )
        )

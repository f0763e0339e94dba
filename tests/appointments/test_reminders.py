"""Reminders end to end: booked, moved, cancelled and late, with the worker on a moved clock.

The worker sends through the Telegram emulator from real committed rows (its guarantees rest on
real transactions), so these tests use their own Database on the migrated test database and
delete what they made. Time is a variable: the service takes `now` and the worker a `clock`, so
"a day later" is an assignment, not a wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from aiogram import Bot
from sqlalchemy import delete, select

from counseldesk.appointments import service
from counseldesk.appointments.models import Appointment
from counseldesk.appointments.reminders import reminder_key
from counseldesk.db.engine import Database
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.students.service import do_mark_unreachable, get_unreachable_ids
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.telegram.models import Notification, NotificationStatus
from counseldesk.telegram.outbox_store import EXPIRED_ERROR
from counseldesk.telegram.outbox_worker import OutboxWorker
from tests.appointments.factories import NOW, appointment_settings, give_hours, local
from tests.conftest import make_settings
from tests.factories import make_counselor, make_student

SETTINGS = appointment_settings()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Office:
    """One counselor with weekday hours, one student with an emulator chat, a worker on a clock."""

    def __init__(self, db: Database, emulator: EmulatorServer, bot: Bot) -> None:
        self.db = db
        self.state = emulator.state
        self.clock = Clock(NOW)
        self.worker = OutboxWorker(
            db,
            bot,
            listen=False,
            clock=self.clock,
            find_unreachable=get_unreachable_ids,
            on_unreachable=do_mark_unreachable,
        )
        self.user_id = self.state.create_user().id
        self.student_id = 0
        self.counselor_id = 0

    async def setup(self) -> None:
        async with self.db.unit_of_work() as session:
            counselor = await make_counselor(session, full_name="Dr. Wanjiru")
            await give_hours(session, counselor)
            student = await make_student(session, telegram_user_id=self.user_id)
            self.counselor_id, self.student_id = counselor.id, student.id

    async def book(self, starts_at: datetime) -> int:
        async with self.db.unit_of_work() as session:
            student = await session.get(Student, self.student_id)
            assert student is not None
            appointment = await service.do_book(
                session,
                SETTINGS,
                student,
                counselor_id=self.counselor_id,
                starts_at=starts_at,
                now=self.clock.now,
            )
            return appointment.id

    def received(self) -> list[str]:
        return [
            entry["text"]
            for entry in self.state.chat_feed(self.user_id)["entries"]
            if entry["direction"] == "out"
        ]

    async def at(self, moment: datetime) -> list[str]:
        """Move the clock to `moment`, let the worker run, return what the student got then."""
        before = len(self.received())
        self.clock.now = moment
        while (await self.worker.run_once()).claimed:
            pass
        return self.received()[before:]

    async def reminders(self, appointment_id: int) -> list[Notification]:
        async with self.db.unit_of_work() as session:
            rows = await session.scalars(
                select(Notification)
                .where(Notification.ref_key == reminder_key(appointment_id))
                .order_by(Notification.id)
            )
            return list(rows.all())

    async def cleanup(self) -> None:
        async with self.db.unit_of_work() as session:
            await session.execute(
                delete(Notification).where(Notification.telegram_user_id == self.user_id)
            )
            await session.execute(
                delete(Appointment).where(Appointment.student_id == self.student_id)
            )
            await session.execute(delete(Student).where(Student.id == self.student_id))
            await session.execute(delete(Counselor).where(Counselor.id == self.counselor_id))


@pytest.fixture
async def office(database_url: str, emulator: EmulatorServer, bot: Bot) -> AsyncIterator[Office]:
    db = Database.from_url(database_url, make_settings())
    office = Office(db, emulator, bot)
    await office.setup()
    try:
        yield office
    finally:
        await office.cleanup()
        await db.dispose()


async def test_reminders_go_out_a_day_and_an_hour_before_exactly_once(office: Office) -> None:
    starts_at = local(SETTINGS, 2030, 3, 7, 10)  # Thursday 10:00, booked on Monday
    await office.book(starts_at)

    assert await office.at(starts_at - timedelta(days=1, minutes=1)) == []
    (day_before,) = await office.at(starts_at - timedelta(days=1))
    assert "in 1 day" in day_before and "Thu 7 Mar 2030, 10:00" in day_before
    assert "Dr. Wanjiru" in day_before
    assert await office.at(starts_at - timedelta(hours=2)) == []  # not again
    (hour_before,) = await office.at(starts_at - timedelta(minutes=59))
    assert "in 1 hour" in hour_before
    assert await office.at(starts_at + timedelta(hours=2)) == []


async def test_a_moved_appointment_is_reminded_at_its_new_time_only(office: Office) -> None:
    starts_at = local(SETTINGS, 2030, 3, 7, 10)
    appointment_id = await office.book(starts_at)
    new_start = local(SETTINGS, 2030, 3, 8, 15)  # Friday 15:00

    async with office.db.unit_of_work() as session:
        await service.do_reschedule_by_counselor(
            session, SETTINGS, appointment_id, starts_at=new_start, now=office.clock.now
        )
    moved = await office.at(NOW + timedelta(seconds=1))
    assert len(moved) == 1 and "has moved" in moved[0]  # the notice, at once

    # Nothing at the old times...
    assert await office.at(starts_at - timedelta(days=1)) == []
    assert await office.at(starts_at - timedelta(minutes=30)) == []
    # ...and both at the new ones.
    (day_before,) = await office.at(new_start - timedelta(days=1))
    assert "Fri 8 Mar 2030, 15:00" in day_before
    (hour_before,) = await office.at(new_start - timedelta(hours=1))
    assert "in 1 hour" in hour_before
    statuses = [r.status for r in await office.reminders(appointment_id)]
    assert statuses.count(NotificationStatus.SENT) == 2
    assert statuses.count(NotificationStatus.CANCELLED) == 2


async def test_a_cancelled_appointment_is_not_reminded(office: Office) -> None:
    starts_at = local(SETTINGS, 2030, 3, 7, 10)
    appointment_id = await office.book(starts_at)
    async with office.db.unit_of_work() as session:
        student = await session.get(Student, office.student_id)
        assert student is not None
        await service.do_cancel_by_student(
            session, SETTINGS, student, appointment_id, now=office.clock.now
        )
    assert await office.at(starts_at - timedelta(days=1)) == []
    assert await office.at(starts_at - timedelta(minutes=30)) == []
    assert {r.status for r in await office.reminders(appointment_id)} == {
        NotificationStatus.CANCELLED
    }


async def test_a_reminder_reached_after_the_start_is_cancelled_not_sent(office: Office) -> None:
    starts_at = local(SETTINGS, 2030, 3, 7, 10)
    appointment_id = await office.book(starts_at)
    # The worker was down from before the first reminder until after the appointment began.
    assert await office.at(starts_at + timedelta(minutes=5)) == []
    reminders = await office.reminders(appointment_id)
    assert [(r.status, r.last_error) for r in reminders] == [
        (NotificationStatus.CANCELLED, EXPIRED_ERROR),
        (NotificationStatus.CANCELLED, EXPIRED_ERROR),
    ]


async def test_a_late_worker_still_sends_the_hour_reminder_before_the_start(
    office: Office,
) -> None:
    starts_at = local(SETTINGS, 2030, 3, 7, 10)
    await office.book(starts_at)
    # Down through both due times, back 10 minutes before the start: the day-before reminder is
    # stale but its appointment has not started, so both still go out, oldest first.
    late = await office.at(starts_at - timedelta(minutes=10))
    assert [("in 1 day" in text, "in 1 hour" in text) for text in late] == [
        (True, False),
        (False, True),
    ]


async def test_booking_after_a_reminder_time_skips_that_reminder(office: Office) -> None:
    async with office.db.unit_of_work() as session:
        student = await session.get(Student, office.student_id)
        assert student is not None
        # Booked at 07:00 for 13:00 the same day: only the hour-before reminder remains.
        appointment = await service.do_book(
            session,
            SETTINGS,
            student,
            counselor_id=office.counselor_id,
            starts_at=local(SETTINGS, 2030, 3, 4, 13),
            now=office.clock.now,
        )
    reminders = await office.reminders(appointment.id)
    assert [r.scheduled_for for r in reminders] == [local(SETTINGS, 2030, 3, 4, 12)]
    (text,) = await office.at(local(SETTINGS, 2030, 3, 4, 12))
    assert "in 1 hour" in text

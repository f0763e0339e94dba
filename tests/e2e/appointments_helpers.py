"""Helpers for the appointment bot tests: counselors who work every day, walking the booking
screens by what the bot offers (the tests run on the real clock), reading back bookings and the
live events the bot's units of work published."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.models import Appointment
from counseldesk.db.engine import Database
from counseldesk.realtime.events import Event, EventSink
from counseldesk.staff.models import Counselor
from tests.appointments.factories import give_hours
from tests.e2e.harness import BotHarness, Student, buttons
from tests.factories import make_counselor, make_student

BOOK = "📅 Book appointment"
MINE = "🗓 My appointments"
FIRST_AVAILABLE = "⚡ First available"
SKIP = "Skip ➡️"
CONFIRM = "✅ Confirm"
CANCEL = "✖️ Cancel"
PAST = "📜 Past appointments"
RESCHEDULE = "🔁 Reschedule"
CANCEL_APPOINTMENT = "❌ Cancel appointment"
YES_CANCEL = "Yes, cancel it"

_TIME = re.compile(r"^\d\d:\d\d$")


async def registered(
    harness: BotHarness, session: AsyncSession, user_id: int, name: str = "Jane Wanjiku"
) -> Student:
    await make_student(session, telegram_user_id=user_id, full_name=name)
    await session.commit()
    return harness.student(user_id=user_id, first_name=name.split()[0])


async def working_every_day(session: AsyncSession, name: str) -> Counselor:
    """A counselor with 08:00-20:00 hours on all seven days, in hour slots: whatever day and
    time the test runs, the booking window holds many free slots."""
    counselor = await make_counselor(session, full_name=name)
    await give_hours(session, counselor, weekdays=range(7), ranges=((8, 20),))
    await session.commit()
    return counselor


def day_labels(entry: dict[str, Any]) -> list[str]:
    return [label for label in buttons(entry) if label.endswith(" free")]


def time_labels(entry: dict[str, Any]) -> list[str]:
    return [label for label in buttons(entry) if _TIME.match(label)]


async def pick_a_time(student: Student, who: str, *, day_index: int = 1) -> tuple[str, str]:
    """From the main menu: Book, the counselor, a day, its first free time. The second day
    offered by default: a time today could pass the booking notice while the test runs.
    Returns the (day, time) labels pressed."""
    await student.say("/menu")
    await student.press(BOOK)
    reply = await student.press(who)
    days = day_labels(reply[0])
    day = days[min(day_index, len(days) - 1)]
    reply = await student.press(day)
    time = time_labels(reply[0])[0]
    await student.press(time)
    return day, time


async def book(student: Student, who: str, reason: str | None = None) -> list[dict[str, Any]]:
    """The whole booking; the reply to Confirm."""
    await pick_a_time(student, who)
    if reason is None:
        await student.press(SKIP)
    else:
        await student.say(reason)
    return await student.press(CONFIRM)


async def appointments_of(session: AsyncSession, student_id: int) -> list[Appointment]:
    rows = await session.scalars(
        select(Appointment)
        .where(Appointment.student_id == student_id)
        .order_by(Appointment.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


class Published:
    """The live events the units of work hand to the realtime bus after commit; each batch is
    passed on to the runtime's real bus as before."""

    def __init__(self, db: Database) -> None:
        self.events: list[Event] = []
        self._db = db
        self._bus: EventSink | None = db.event_sink
        db.event_sink = self._sink

    async def _sink(self, events: list[Event]) -> None:
        self.events.extend(events)
        if self._bus is not None:
            await self._bus(events)

    def appointment_events(self) -> list[tuple[str, str, int]]:
        """(type, action, appointment id) of the appointment events, in order."""
        return [
            (e.type, e.data["action"], e.data["appointment"]["id"])
            for e in self.events
            if e.type.startswith("appointment.")
        ]

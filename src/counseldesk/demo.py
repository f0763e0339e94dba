"""Demo data for a first `make run`: a demo admin, counselors with working hours, categories,
office details, a few students with conversations and appointments, so every page has something
real to show."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import schedule
from counseldesk.appointments.availability import HoursRange
from counseldesk.appointments.models import (
    Absence,
    Appointment,
    AppointmentStatus,
    CanceledBy,
    ClosedDay,
)
from counseldesk.config import Settings
from counseldesk.content.service import do_update_office_settings
from counseldesk.staff import service as staff
from counseldesk.staff.models import Counselor, Role
from counseldesk.students.models import Student
from counseldesk.support import service as support
from counseldesk.support.models import SupportCategory
from counseldesk.telegram.emulator.state import EmulatorState

DEMO_ADMIN_EMAIL = "admin@counseldesk.example"
# Printed on the console by `make run`; a demo installation is not a production one.
DEMO_PASSWORD = "counseldesk-demo"  # noqa: S105

COUNSELORS = [
    ("amina.otieno@counseldesk.example", "Dr. Amina Otieno"),
    ("brian.kiptoo@counseldesk.example", "Brian Kiptoo"),
    ("grace.wanjiru@counseldesk.example", "Grace Wanjiru"),
]

CATEGORIES = [
    ("Academic", "Studies, exams, deadlines, course choices"),
    ("Personal", "Relationships, stress, homesickness, wellbeing"),
    ("Mental health", "Anxiety, low mood, sleep, anything weighing on you"),
    ("Career", "Internships, CVs, what comes after university"),
    ("Financial", "Fees, bursaries, money worries"),
    ("Other", "Anything else"),
]

# Telegram ids in a range real accounts do not use, so the simulator can speak as them.
STUDENTS = [
    (700_000_001, "SC/1001/2023", "Faith Achieng", 2, "+254700000001"),
    (700_000_002, "ED/2044/2022", "Kevin Mutua", 3, "+254700000002"),
    (700_000_003, "BA/3310/2024", "Lucy Nyambura", 1, "+254700000003"),
    (700_000_004, "EN/0877/2021", "Samuel Ochieng", 4, "+254700000004"),
    (700_000_005, "MD/5520/2020", "Ruth Chebet", 5, "+254700000005"),
]


# Weekly hours per demo counselor (same order as COUNSELORS): (slot minutes, weekday ranges,
# Saturday ranges). Every day but Sunday has someone working, so a student can book on a fresh
# start whatever the day; the slot lengths differ so the dashboard shows 30- and 45-minute grids.
HOURS: list[tuple[int, list[tuple[time, time]], list[tuple[time, time]]]] = [
    (60, [(time(9), time(12)), (time(14), time(17))], [(time(9), time(12))]),
    (30, [(time(10), time(13)), (time(14), time(18))], [(time(10), time(13))]),
    (45, [(time(8), time(12)), (time(13), time(16))], [(time(9), time(12))]),
]

# Jamhuri Day: the office's next public holiday in December, as the demo's closed day.
HOLIDAY = (12, 12, "Jamhuri Day (public holiday)")


@dataclass(frozen=True)
class DemoAppointment:
    """One demo booking, placed by working days relative to today (negative: in the past)."""

    student: int  # index into STUDENTS
    counselor: int  # index into COUNSELORS
    working_day: int  # 0 = today (only when today is a weekday), 1 = the next one, -1 = the last
    at: time  # on that counselor's slot grid (see HOURS)
    status: AppointmentStatus
    reason: str = ""
    canceled_by: CanceledBy | None = None
    reschedule_count: int = 0


APPOINTMENTS = [
    DemoAppointment(0, 0, -7, time(10), AppointmentStatus.COMPLETED, "Exam stress"),
    DemoAppointment(1, 2, -5, time(8, 45), AppointmentStatus.COMPLETED, "Bursary application"),
    DemoAppointment(3, 1, -4, time(10, 30), AppointmentStatus.NO_SHOW, "Missed a CAT"),
    DemoAppointment(
        4,
        0,
        -2,
        time(14),
        AppointmentStatus.CANCELED,
        "Career after graduation",
        canceled_by=CanceledBy.STUDENT,
    ),
    DemoAppointment(2, 1, -1, time(15), AppointmentStatus.COMPLETED, "Feeling homesick"),
    # Over, but not yet marked completed or no-show: what a counselor finds to tidy up.
    DemoAppointment(0, 0, -1, time(11), AppointmentStatus.CONFIRMED, "Follow-up: sleep"),
    DemoAppointment(1, 0, 0, time(15), AppointmentStatus.CONFIRMED, "Fee balance"),
    DemoAppointment(2, 2, 1, time(9, 30), AppointmentStatus.PENDING, "Homesick in first year"),
    DemoAppointment(0, 0, 2, time(10), AppointmentStatus.CONFIRMED, "Exam stress: follow-up"),
    DemoAppointment(3, 1, 3, time(11), AppointmentStatus.PENDING, "Deadline extension"),
    DemoAppointment(4, 2, 4, time(13, 45), AppointmentStatus.CONFIRMED, "CV review"),
    DemoAppointment(
        1,
        1,
        6,
        time(14, 30),
        AppointmentStatus.CONFIRMED,
        "Bursary appeal",
        reschedule_count=1,
    ),
]
# Brian is away for a training day this many working days ahead (no appointment falls on it).
ABSENCE_WORKING_DAY = 8

DEFAULT_TIMEZONE = ZoneInfo(Settings.model_fields["office_timezone"].default)


async def load_demo_data(
    session: AsyncSession, *, tz: ZoneInfo = DEFAULT_TIMEZONE, now: datetime | None = None
) -> bool:
    """Load the demo set into an empty database; False (and no change) when it has counselors.

    `tz` is the office's time zone: working hours and the demo appointments are wall-clock
    times there, placed around `now` (default: the current time)."""
    if await session.scalar(select(func.count()).select_from(Counselor)):
        return False
    await staff.create_counselor(
        session,
        email=DEMO_ADMIN_EMAIL,
        full_name="Office Administrator",
        password=DEMO_PASSWORD,
        role=Role.ADMIN,
    )
    for email, name in COUNSELORS:
        await staff.create_counselor(
            session, email=email, full_name=name, password=DEMO_PASSWORD, role=Role.COUNSELOR
        )
    for order, (name, description) in enumerate(CATEGORIES):
        session.add(SupportCategory(name=name, description=description, sort_order=order))
    students = []
    for telegram_id, admission_no, name, year, phone in STUDENTS:
        student = Student(
            telegram_user_id=telegram_id,
            admission_no=admission_no,
            full_name=name,
            year_of_study=year,
            phone=phone,
        )
        session.add(student)
        students.append(student)
    await session.flush()
    await _demo_conversations(session, students)
    await _demo_appointments(session, students, tz, now or datetime.now(UTC))
    await do_update_office_settings(
        session,
        office_name="University Counseling Office",
        phone="+254 700 123 456",
        email="counseling@university.example",
        location="Student Centre, 2nd floor, room 204",
        office_hours="Mon–Fri 8:00–17:00",
        emergency_contacts=(
            "Campus security (24 h): +254 700 000 999\n"
            "National crisis line (24 h): 1199\n"
            "Emergency services: 999 / 112"
        ),
    )
    await session.flush()
    return True


async def _demo_conversations(session: AsyncSession, students: list[Student]) -> None:
    """A few open conversations, so the inbox has something to show on a first start.

    No counselor replies: a reply is delivered through the outbox, and the demo students exist
    only in the database, not in the Telegram emulator, until someone picks them in the simulator.
    """
    categories = {c.name: c.id for c in await support.list_categories(session)}
    amina = await staff.find_counselor_by_email(session, COUNSELORS[0][0])
    assert amina is not None
    faith, kevin, lucy = students[0], students[1], students[2]

    ticket, _ = await support.do_open_ticket(
        session,
        faith,
        category_id=categories["Academic"],
        subject="Exam stress",
        body="Hi, my exams start next week and I can't sleep or focus. Can someone help?",
    )
    await support.do_add_student_message(
        session, faith, ticket, body="I'm free most afternoons if we could talk."
    )
    await support.do_take(session, amina, ticket)
    await support.do_add_note(
        session, amina, ticket, body="Offer a session on Thursday; check on sleep."
    )
    await support.do_open_ticket(
        session,
        kevin,
        category_id=categories["Financial"],
        subject="Fee balance and bursary",
        body="I have a fee balance and was told to ask about bursaries. Where do I start?",
    )
    await support.do_open_ticket(
        session,
        lucy,
        category_id=categories["Personal"],
        subject="Homesick in first year",
        body="It's my first semester away from home and I feel lonely most evenings.",
    )


async def _demo_appointments(
    session: AsyncSession, students: list[Student], tz: ZoneInfo, now: datetime
) -> None:
    """Working hours, a closed day, an absence and appointments around today.

    The appointments are written directly rather than booked through the service: the past ones
    could not be booked any more, and a booking queues reminders for the outbox, which would
    fail to reach the demo students (they exist only in the database, not in the emulator)."""
    counselors = []
    for (email, _), (slot_minutes, weekdays, saturday) in zip(COUNSELORS, HOURS, strict=True):
        counselor = await staff.find_counselor_by_email(session, email)
        assert counselor is not None
        counselors.append(counselor)
        days: dict[int, Sequence[HoursRange]] = {
            day: [HoursRange(a, b) for a, b in weekdays] for day in range(5)
        }
        days[5] = [HoursRange(a, b) for a, b in saturday]
        await schedule.set_weekly_hours(
            session, counselor.id, schedule.check_weekly_hours(slot_minutes, days)
        )
    today = now.astimezone(tz).date()
    month, day, reason = HOLIDAY
    holiday = date(today.year, month, day)
    if holiday < today:
        holiday = date(today.year + 1, month, day)
    session.add(ClosedDay(day=holiday, reason=reason))
    absent = _working_day(today, ABSENCE_WORKING_DAY, holiday)
    session.add(
        Absence(
            counselor_id=counselors[1].id,
            starts_on=absent,
            ends_on=absent,
            reason="Training workshop",
            created_by_id=counselors[1].id,
        )
    )
    for plan in APPOINTMENTS:
        if plan.working_day == 0 and (today.weekday() >= 5 or today == holiday):
            continue  # no weekday hours today: the other appointments still fill the week
        on = today if plan.working_day == 0 else _working_day(today, plan.working_day, holiday)
        starts_at = datetime.combine(on, plan.at, tzinfo=tz).astimezone(UTC)
        ends_at = starts_at + timedelta(minutes=HOURS[plan.counselor][0])
        # Booked a few days before; a canceled one was called off the day before.
        created_at = min(now, starts_at - timedelta(days=3, hours=2))
        canceled_at = starts_at - timedelta(days=1) if plan.canceled_by else None
        session.add(
            Appointment(
                student_id=students[plan.student].id,
                counselor_id=counselors[plan.counselor].id,
                starts_at=starts_at,
                ends_at=ends_at,
                status=plan.status,
                reason=plan.reason,
                canceled_by=plan.canceled_by,
                canceled_at=canceled_at,
                reschedule_count=plan.reschedule_count,
                created_at=created_at,
                updated_at=min(now, max(created_at, canceled_at or ends_at)),
            )
        )
    await session.flush()


def _working_day(today: date, offset: int, holiday: date) -> date:
    """The `offset`-th weekday (Monday to Friday, not the holiday) after today, or before it
    when negative."""
    days = _weekdays(today, 1 if offset > 0 else -1, holiday)
    for _ in range(abs(offset) - 1):
        next(days)
    return next(days)


def _weekdays(today: date, step: int, holiday: date) -> Iterator[date]:
    day = today
    while True:
        day += timedelta(days=step)
        if day.weekday() < 5 and day != holiday:
            yield day


def introduce_to_emulator(state: EmulatorState) -> int:
    """Make the demo students Telegram users of the built-in emulator (its users live in memory,
    so on every start): what the office sends them — a confirmation, a reminder, a reply — then
    lands in their simulator chats instead of failing as "chat not found". Returns how many
    were added."""
    added = 0
    for telegram_user_id, _, full_name, _, _ in STUDENTS:
        if telegram_user_id in state.users:
            continue
        first_name, _, last_name = full_name.partition(" ")
        state.create_user(
            user_id=telegram_user_id, first_name=first_name, last_name=last_name or None
        )
        added += 1
    return added

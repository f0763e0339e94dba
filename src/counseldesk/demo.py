"""Demo data for a first `make run`: a demo admin, counselors, categories, office details and a
few students, so every page has something real to show."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.content.service import do_update_office_settings
from counseldesk.staff import service as staff
from counseldesk.staff.models import Counselor, Role
from counseldesk.students.models import Student
from counseldesk.support import service as support
from counseldesk.support.models import SupportCategory

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


async def load_demo_data(session: AsyncSession) -> bool:
    """Load the demo set into an empty database; False (and no change) when it has counselors."""
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

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.db.engine import Database
from counseldesk.errors import InvalidInput, NotFound
from counseldesk.realtime.events import Event
from counseldesk.support import service
from counseldesk.support.crisis import compile_terms, forget_cached_terms
from counseldesk.support.models import (
    SenderType,
    SupportMessage,
    TicketPriority,
    TicketStatus,
)
from counseldesk.telegram.models import Notification, NotificationStatus
from tests.factories import make_counselor, make_student


async def _notifications(session: AsyncSession, telegram_user_id: int) -> list[Notification]:
    rows = await session.scalars(
        select(Notification)
        .where(Notification.telegram_user_id == telegram_user_id)
        .order_by(Notification.id)
    )
    return list(rows.all())


def _published_events(db: Database) -> list[Event]:
    """The live events `db`'s units of work publish from now on, as they are published."""
    published: list[Event] = []

    async def sink(events: list[Event]) -> None:
        published.extend(events)

    db.event_sink = sink
    return published


async def test_opening_a_ticket_stores_the_first_message_and_inbox_columns(
    session: AsyncSession,
) -> None:
    student = await make_student(session)
    ticket, message = await service.do_open_ticket(
        session, student, category_id=None, subject="  Exam   stress ", body="I can't focus."
    )
    assert (ticket.subject, ticket.status, ticket.priority) == (
        "Exam stress",
        TicketStatus.OPEN,
        TicketPriority.MEDIUM,
    )
    assert ticket.last_message_preview == "I can't focus."
    assert ticket.last_student_message_id == message.id
    assert ticket.message_count == 1
    assert message.sender_type is SenderType.STUDENT


@pytest.mark.parametrize(
    ("subject", "body"),
    [("", "text"), ("ok subject", ""), ("x" * 201, "text"), ("ok subject", "y" * 4001)],
)
async def test_bad_subject_or_body_is_refused(
    session: AsyncSession, subject: str, body: str
) -> None:
    student = await make_student(session)
    with pytest.raises(InvalidInput):
        await service.do_open_ticket(session, student, category_id=None, subject=subject, body=body)


async def test_crisis_wording_raises_priority_and_sends_emergency_contacts_once(
    session: AsyncSession,
) -> None:
    forget_cached_terms()
    student = await make_student(session)
    ticket, _ = await service.do_open_ticket(
        session, student, category_id=None, subject="Help", body="Some days I want to DIE."
    )
    assert ticket.priority is TicketPriority.URGENT
    assert ticket.crisis_detected_at is not None
    await service.do_add_student_message(session, student, ticket, body="thinking about suicide")
    sent = await _notifications(session, student.telegram_user_id)
    assert [n.kind for n in sent] == ["crisis_contacts"]
    assert "You are not alone" in sent[0].payload["text"]


def test_crisis_terms_match_whole_words_only() -> None:
    pattern = compile_terms(["die", "kill myself"])
    assert pattern is not None
    assert pattern.search("I want to die")
    assert pattern.search("I could KILL   myself")
    assert not pattern.search("my diet is fine")
    assert not pattern.search("studied")


async def test_a_reply_goes_through_the_outbox_and_marks_the_ticket_replied(
    session: AsyncSession,
) -> None:
    student = await make_student(session, full_name="Ann Njeri")
    counselor = await make_counselor(session, full_name="Dr <Grace>")
    ticket, _ = await service.do_open_ticket(
        session, student, category_id=None, subject="Fees", body="I can't pay"
    )
    reply = await service.do_reply(session, counselor, ticket, body="Let's talk <today>")
    assert ticket.status is TicketStatus.REPLIED
    assert ticket.assigned_counselor_id == counselor.id
    (notification,) = await _notifications(session, student.telegram_user_id)
    assert reply.notification_id == notification.id
    assert notification.status is NotificationStatus.PENDING
    assert "Dr &lt;Grace&gt;" in notification.payload["text"]
    assert "Let's talk &lt;today&gt;" in notification.payload["text"]
    assert notification.payload["ref"] == {"ticket_id": ticket.id, "message_id": reply.id}


async def test_notes_are_internal_and_send_nothing(session: AsyncSession) -> None:
    student = await make_student(session)
    counselor = await make_counselor(session)
    ticket, _ = await service.do_open_ticket(
        session, student, category_id=None, subject="Note test", body="hello"
    )
    note = await service.do_add_note(session, counselor, ticket, body="Call her tomorrow")
    assert note.is_internal
    assert await _notifications(session, student.telegram_user_id) == []
    visible = await service.recent_messages(session, ticket, limit=50, include_internal=False)
    assert [m.body for m in visible] == ["hello"]


async def test_status_changes_show_in_the_timeline_and_a_closed_ticket_reopens(
    session: AsyncSession,
) -> None:
    student = await make_student(session)
    counselor = await make_counselor(session, full_name="Brian Kiptoo")
    ticket, _ = await service.do_open_ticket(
        session, student, category_id=None, subject="Timeline", body="first"
    )
    await service.do_take(session, counselor, ticket)
    assert ticket.status is TicketStatus.IN_PROGRESS
    await service.do_update_ticket(
        session, counselor, ticket, status=TicketStatus.RESOLVED, priority=TicketPriority.LOW
    )
    await service.do_add_student_message(session, student, ticket, body="one more thing")
    assert ticket.status.value == "open"
    system = await session.scalars(
        select(SupportMessage.body)
        .where(
            SupportMessage.ticket_id == ticket.id, SupportMessage.sender_type == SenderType.SYSTEM
        )
        .order_by(SupportMessage.id)
    )
    assert list(system) == [
        "Taken (by Brian Kiptoo)",
        "Status: In progress → Resolved; Priority: Medium → Low (by Brian Kiptoo)",
        "Reopened by the student",
    ]


@pytest.mark.parametrize("text", ["half\x00way", "half\ud800way"])
def test_text_postgresql_cannot_hold_is_refused_with_a_reason(text: str) -> None:
    # From any door (the bot, the API): a NUL, or half of a UTF-16 pair, fails a statement.
    for check in (service.check_body, service.check_subject):
        with pytest.raises(InvalidInput):
            check(text)


async def test_a_student_message_that_changes_the_status_tells_open_chats(db: Database) -> None:
    # An open chat's status menu follows ticket events; a student writing after a reply (back
    # to in progress) or into a resolved ticket (reopened) changes the status too.
    published = _published_events(db)
    async with db.unit_of_work() as session:
        student = await make_student(session)
        counselor = await make_counselor(session)
        ticket, _ = await service.do_open_ticket(
            session, student, category_id=None, subject="Live status", body="x"
        )
        await service.do_reply(session, counselor, ticket, body="Come on Monday?")
    updates = []
    for status in (None, TicketStatus.RESOLVED):
        if status is not None:
            async with db.unit_of_work() as session:
                ticket = await service.get_ticket(session, ticket.id)
                await service.do_update_ticket(session, counselor, ticket, status=status)
        published.clear()
        async with db.unit_of_work() as session:
            ticket = await service.get_ticket(session, ticket.id)
            await service.do_add_student_message(session, student, ticket, body="Yes, thanks")
        updates.append([e.data["status"] for e in published if e.type == "ticket.updated"])
    assert updates == [["in_progress"], ["open"]]
    # A message that leaves the status as it is sends no ticket event.
    published.clear()
    async with db.unit_of_work() as session:
        ticket = await service.get_ticket(session, ticket.id)
        await service.do_add_student_message(session, student, ticket, body="One more thing")
    assert [e.type for e in published] == ["message.created"]


async def test_a_student_cannot_reach_another_students_ticket(session: AsyncSession) -> None:
    owner = await make_student(session)
    other = await make_student(session)
    ticket, _ = await service.do_open_ticket(
        session, owner, category_id=None, subject="Mine", body="private"
    )
    with pytest.raises(NotFound):
        await service.get_student_ticket(session, other, ticket.id)
    with pytest.raises(NotFound):
        await service.do_add_student_message(session, other, ticket, body="hi")


async def test_live_events_are_published_after_commit_and_dropped_on_rollback(db: Database) -> None:
    published = _published_events(db)
    async with db.unit_of_work() as session:
        student = await make_student(session)
        await service.do_open_ticket(session, student, category_id=None, subject="Live", body="x")
        assert published == []  # nothing leaves before the commit
    assert [e.type for e in published] == ["message.created", "ticket.created"]

    published.clear()

    async def open_then_fail() -> None:
        async with db.unit_of_work() as session:
            student = await make_student(session)
            await service.do_open_ticket(
                session, student, category_id=None, subject="Gone", body="y"
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await open_then_fail()
    assert published == []

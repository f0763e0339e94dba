"""Support tickets and messages for the inbox and chat tests, written straight into the tables
(with the ticket's inbox columns kept as the service keeps them), so a test can build any state —
a given order of activity, read marks, delivery states — without going through the bot."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.support.models import (
    SenderType,
    SupportCategory,
    SupportMessage,
    SupportTicket,
    TicketPriority,
    TicketRead,
    TicketStatus,
)
from counseldesk.telegram.models import Notification, NotificationStatus
from tests.factories import make_student

_sequence = itertools.count(1)
# A fixed origin, so orders of activity are exact and tests do not depend on the clock.
EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def make_category(session: AsyncSession, name: str | None = None) -> SupportCategory:
    category = SupportCategory(name=name or f"Category {next(_sequence)}", description="")
    session.add(category)
    await session.flush()
    return category


async def make_ticket(
    session: AsyncSession,
    *,
    student: Student | None = None,
    subject: str | None = None,
    status: TicketStatus = TicketStatus.OPEN,
    priority: TicketPriority = TicketPriority.MEDIUM,
    category: SupportCategory | None = None,
    assignee: Counselor | None = None,
    last_activity_at: datetime | None = None,
    crisis: bool = False,
) -> SupportTicket:
    student = student or await make_student(session)
    n = next(_sequence)
    at = last_activity_at or EPOCH + timedelta(minutes=n)
    ticket = SupportTicket(
        telegram_user_id=student.telegram_user_id,
        student_id=student.id,
        student_name=student.full_name,
        category_id=category.id if category else None,
        subject=subject or f"Ticket number {n}",
        status=status,
        priority=priority,
        assigned_counselor_id=assignee.id if assignee else None,
        crisis_detected_at=at if crisis else None,
        created_at=at - timedelta(hours=1),
        last_activity_at=at,
        last_message_preview="",
        message_count=0,
    )
    session.add(ticket)
    await session.flush()
    return ticket


async def add_message(
    session: AsyncSession,
    ticket: SupportTicket,
    body: str = "hello",
    *,
    sender: SenderType = SenderType.STUDENT,
    counselor: Counselor | None = None,
    is_internal: bool = False,
    media_kind: str | None = None,
    media_file_id: str | None = None,
    media_file_name: str | None = None,
    media_mime_type: str | None = None,
    delivery: NotificationStatus | None = None,
    error: str | None = None,
    touch: bool = False,
) -> SupportMessage:
    """A message in `ticket`; a counselor reply with `delivery` gets its outbox row.

    `touch` moves the ticket's last activity as a real message does; by default the ticket
    keeps its place in the inbox (tests of order set last_activity_at themselves).
    """
    notification_id = None
    if delivery is not None:
        notification = Notification(
            kind="support_reply",
            telegram_user_id=ticket.telegram_user_id,
            payload={"text": body, "ref": {"ticket_id": ticket.id}},
            status=delivery,
            last_error=error,
        )
        session.add(notification)
        await session.flush()
        notification_id = notification.id
    message = SupportMessage(
        ticket_id=ticket.id,
        telegram_user_id=ticket.telegram_user_id,
        sender_type=sender,
        counselor_id=counselor.id if counselor else None,
        body=body,
        is_internal=is_internal,
        media_kind=media_kind,
        media_file_id=media_file_id,
        media_file_name=media_file_name,
        media_mime_type=media_mime_type,
        notification_id=notification_id,
    )
    session.add(message)
    await session.flush()
    ticket.message_count += 1
    if not is_internal:
        ticket.last_message_preview = body[:140]
        ticket.last_sender_type = sender
        if touch:
            ticket.last_activity_at = ticket.last_activity_at + timedelta(seconds=1)
    if sender is SenderType.STUDENT:
        ticket.last_student_message_id = message.id
    await session.flush()
    return message


async def mark_read(
    session: AsyncSession, counselor: Counselor, ticket: SupportTicket, up_to: int
) -> None:
    session.add(
        TicketRead(counselor_id=counselor.id, ticket_id=ticket.id, last_read_message_id=up_to)
    )
    await session.flush()

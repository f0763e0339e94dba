"""Read-only lookups the bot needs beyond support.service: what a conversation view shows, and
which conversation a bot message belonged to.

Kept apart from the handlers so that no handler runs a query of its own. Candidates to move into
support.service once its owner agrees (see the support bot's notes in the report).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.support import service
from counseldesk.support.models import SupportMessage, SupportTicket
from counseldesk.telegram.models import Notification


@dataclass(frozen=True)
class ConversationView:
    ticket: SupportTicket
    messages: list[SupportMessage]  # oldest first
    counselor_names: dict[int, str]
    maybe_more: bool  # older messages exist beyond these


async def load_conversation(
    session: AsyncSession, student: Student, ticket_id: int, *, limit: int
) -> ConversationView:
    """The student's ticket with its latest visible messages and their authors' names.

    Raises NotFound when the ticket is not this student's. Three queries whatever the number of
    counselors who answered: the ticket, the messages, the names.
    """
    ticket = await service.get_student_ticket(session, student, ticket_id)
    # One more than shown, to know whether older ones exist.
    messages = await service.recent_messages(
        session, ticket, limit=limit + 1, include_internal=False
    )
    ids = {m.counselor_id for m in messages if m.counselor_id is not None}
    names: dict[int, str] = {}
    if ids:
        rows = await session.execute(
            select(Counselor.id, Counselor.full_name).where(Counselor.id.in_(ids))
        )
        names = {row.id: row.full_name for row in rows}
    return ConversationView(ticket, messages[-limit:], names, maybe_more=len(messages) > limit)


async def ticket_id_of_bot_message(
    session: AsyncSession, telegram_user_id: int, telegram_message_id: int
) -> int | None:
    """The conversation a message the bot sent (a counselor's reply, from the outbox) was about.

    Lets a student answer a reply with Telegram's "Reply" and reach that conversation even when
    another one is active: the student said which one, nothing is guessed.
    """
    ref = await session.scalar(
        select(Notification.payload["ref"]["ticket_id"].as_integer())
        .where(
            Notification.telegram_user_id == telegram_user_id,
            Notification.telegram_message_id == telegram_message_id,
        )
        .limit(1)
    )
    return int(ref) if ref is not None else None

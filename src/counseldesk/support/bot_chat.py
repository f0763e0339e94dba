"""The active conversation: whatever a student sends outside any other flow goes into it.

Which conversation is the student's choice, kept in the FSM data: the one they opened or started
last, or the one whose counselor reply they answer with Telegram's "Reply". Nothing is ever
guessed from what the message says (the earlier system attached messages by keywords).
"""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.errors import InvalidInput, NotFound
from counseldesk.i18n import t
from counseldesk.students.models import Student
from counseldesk.support import bot_render, bot_views, keyboards, service
from counseldesk.support.bot_media import Incoming, read_message
from counseldesk.support.bot_state import forget_active, get_active, set_active
from counseldesk.support.crisis import find_crisis_wording
from counseldesk.telegram.replies import Replies


async def _target(
    message: Message, state: FSMContext, session: AsyncSession, student: Student
) -> tuple[int | None, bool]:
    """The conversation this message goes to, and whether that switches the active one."""
    active = await get_active(state)
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.is_bot:
        ticket_id = await bot_views.ticket_id_of_bot_message(
            session, student.telegram_user_id, replied.message_id
        )
        if ticket_id is not None and ticket_id != active:
            return ticket_id, True
    return active, False


async def on_message(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    lang: str | None,
    replies: Replies,
) -> None:
    incoming = read_message(message)
    ticket_id, switching = await _target(message, state, session, student)
    if ticket_id is None:
        await _without_conversation(message, incoming, state, session, student, lang, replies)
        return
    if not incoming.supported:
        replies.send(t("support.chat.not_delivered_unsupported", lang))
        return
    try:
        # Locked: a counselor's reply to the same ticket updates the same inbox columns.
        ticket = await service.get_ticket(session, ticket_id, for_update=True)
        was_closed = bot_render.is_closed(ticket)
        # The text goes to the service exactly as typed: crisis wording is its to find.
        await service.do_add_student_message(
            session,
            student,
            ticket,
            body=incoming.body,
            media=incoming.media,
            telegram_message_id=message.message_id,
        )
    except NotFound:
        if not switching:
            await forget_active(state)
        replies.send(t("support.chat.gone", lang), keyboards.start_prompt(lang))
        return
    except InvalidInput:
        # A present text or attachment fails only one way: the text is too long.
        replies.send(t("support.chat.not_delivered_too_long", lang, limit=service.MAX_BODY))
        return
    subject = bot_render.ack_subject(ticket)
    if switching:
        await set_active(state, ticket.id)
        replies.send(t("support.chat.switched", lang, subject=subject))
    elif was_closed:
        replies.send(t("support.chat.sent_reopened", lang, subject=subject))
    else:
        replies.send(t("support.chat.sent", lang, subject=subject))


async def _without_conversation(
    message: Message,
    incoming: Incoming,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    lang: str | None,
    replies: Replies,
) -> None:
    """No active conversation: say that nothing was passed on and offer to start one.

    One exception, for safety: crisis wording is never left waiting for the student to find the
    right button. It opens an urgent conversation with the message as it is, which alerts the
    counselors and sends the student the emergency contacts (the service does both).
    """
    if incoming.body and await find_crisis_wording(session, incoming.body) is not None:
        try:
            ticket, _ = await service.do_open_ticket(
                session,
                student,
                category_id=None,
                subject=t("support.chat.crisis_subject", lang),
                body=incoming.body,
                media=incoming.media,
                telegram_message_id=message.message_id,
            )
        except InvalidInput:
            replies.send(t("support.chat.not_delivered_too_long", lang, limit=service.MAX_BODY))
            return
        await set_active(state, ticket.id)
        replies.send(t("support.chat.crisis_opened", lang))
        return
    replies.send(t("support.chat.no_active", lang), keyboards.start_prompt(lang))

"""The student's support conversations in the bot: the menu, the list, one conversation.

Starting a conversation lives in bot_compose.py, writing into the active one in bot_chat.py; this
module holds the screens reached by buttons and assembles the router.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import F, Router
from aiogram.filters import Command, StateFilter, or_f
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.config import Settings
from counseldesk.errors import NotFound
from counseldesk.i18n import t
from counseldesk.students.bot_filters import is_registered, is_stranger
from counseldesk.students.keyboards import MenuCallback
from counseldesk.students.models import Student
from counseldesk.support import bot_chat, bot_compose, bot_render, bot_views, keyboards, service
from counseldesk.support.bot_common import NOT_COMMAND
from counseldesk.support.bot_state import Composing, forget_active, get_active, set_active
from counseldesk.support.keyboards import (
    CategoryCallback,
    DraftAction,
    DraftCallback,
    SupportAction,
    SupportCallback,
    TicketAction,
    TicketCallback,
)
from counseldesk.telegram.replies import Replies

PAGE_SIZE = 5
# Messages shown when a conversation is opened; older ones give way first if 4096 chars are near.
VIEW_MESSAGES = 10


async def menu(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    lang: str | None,
    replies: Replies,
) -> None:
    text = t("support.menu_title", lang)
    active = await get_active(state)
    if active is not None:
        try:
            ticket = await service.get_student_ticket(session, student, active)
            text = t("support.menu_title_active", lang, subject=ticket.subject)
        except NotFound:
            await forget_active(state)
    replies.show(query, text, keyboards.support_menu(lang))


async def ticket_list(
    query: CallbackQuery,
    callback_data: SupportCallback,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    page = max(callback_data.page, 0)
    tickets, has_next = await service.list_student_tickets(
        session, student, offset=page * PAGE_SIZE, limit=PAGE_SIZE
    )
    if not tickets and page > 0:  # past the end (the list shrank, or forged data): first page
        page = 0
        tickets, has_next = await service.list_student_tickets(
            session, student, offset=0, limit=PAGE_SIZE
        )
    active = await get_active(state)
    now = datetime.now(UTC)
    labels = [
        (
            ticket.id,
            bot_render.list_label(
                ticket, active=ticket.id == active, tz=settings.tz, now=now, lang=lang
            ),
        )
        for ticket in tickets
    ]
    text = (
        t("support.list.title", lang, page=page + 1) if tickets else t("support.list.empty", lang)
    )
    replies.show(
        query,
        text,
        keyboards.ticket_list(labels, page=page, has_next=has_next, lang=lang),
    )


async def ticket_action(
    query: CallbackQuery,
    callback_data: TicketCallback,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    settings: Settings,
    lang: str | None,
    replies: Replies,
) -> None:
    """Open, close or reopen one of the student's conversations; it becomes the active one."""
    toast = None
    try:
        if callback_data.action is not TicketAction.OPEN:
            ticket = await service.get_student_ticket(session, student, callback_data.ticket_id)
            if callback_data.action is TicketAction.CLOSE:
                await service.do_close_by_student(session, student, ticket)
                toast = t("support.view.closed", lang)
            else:
                await service.do_reopen_by_student(session, student, ticket)
                toast = t("support.view.reopened", lang)
        view = await bot_views.load_conversation(
            session, student, callback_data.ticket_id, limit=VIEW_MESSAGES
        )
    except NotFound:
        # Someone else's ticket (forged callback data) or one that is gone: say nothing more.
        replies.answer_callback(query.id, t("support.not_found", lang))
        return
    await set_active(state, view.ticket.id)
    text = bot_render.conversation(view, tz=settings.tz, now=datetime.now(UTC), lang=lang)
    markup = keyboards.ticket_view(
        view.ticket.id,
        is_closed=bot_render.is_closed(view.ticket),
        page=callback_data.page,
        lang=lang,
    )
    replies.show(query, text, markup, toast=toast)


async def register_first(query: CallbackQuery, lang: str | None, replies: Replies) -> None:
    replies.answer_callback(query.id, t("common.register_first", lang))


def create_router() -> Router:
    """A fresh router per dispatcher. Include it before the students router: its handlers see
    only registered students, no registration state and no commands, so registration and the
    commands keep working, and the students router's catch-all stays the last resort."""
    members = Router(name="support.members")
    members.message.filter(is_registered)
    members.callback_query.filter(is_registered)
    cb, msg = members.callback_query, members.message
    composing = StateFilter(Composing)

    # Leaving a half-written draft for another screen drops the draft, then that screen shows
    # (otherwise the next thing typed would silently become the draft's subject or message).
    cb.register(
        bot_compose.abandon,
        composing,
        or_f(MenuCallback.filter(), SupportCallback.filter(), TicketCallback.filter()),
    )
    msg.register(bot_compose.abandon, composing, Command("menu"))
    msg.register(bot_compose.cancel_command, composing, Command("cancel"))

    cb.register(menu, MenuCallback.filter(F.action == keyboards.MENU_ACTION))
    cb.register(menu, SupportCallback.filter(F.action == SupportAction.MENU))
    cb.register(ticket_list, SupportCallback.filter(F.action == SupportAction.LIST))
    cb.register(bot_compose.start, SupportCallback.filter(F.action == SupportAction.NEW))
    cb.register(ticket_action, TicketCallback.filter())

    cb.register(
        bot_compose.cancel_button, composing, DraftCallback.filter(F.action == DraftAction.CANCEL)
    )
    cb.register(bot_compose.chose_category, Composing.category, CategoryCallback.filter())
    cb.register(
        bot_compose.send, Composing.confirm, DraftCallback.filter(F.action == DraftAction.SEND)
    )
    cb.register(bot_compose.edit, Composing.confirm, DraftCallback.filter())
    msg.register(bot_compose.got_subject, Composing.subject, NOT_COMMAND)
    msg.register(bot_compose.got_body, Composing.body, NOT_COMMAND)
    msg.register(bot_compose.typed_at_confirm, Composing.confirm, NOT_COMMAND)
    msg.register(bot_compose.typed_at_category, Composing.category, NOT_COMMAND)
    # A button of a step that is over (pressed twice, or on an old message).
    cb.register(bot_compose.stale, F.data.startswith("sup"))

    msg.register(bot_chat.on_message, StateFilter(None), NOT_COMMAND)

    strangers = Router(name="support.strangers")
    strangers.callback_query.register(register_first, is_stranger, F.data.startswith("sup"))

    router = Router(name="support")
    router.include_routers(members, strangers)
    return router

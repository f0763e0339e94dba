"""Starting a new support conversation: topic, subject, first message, confirm.

Each step checks its answer with the service's own checks, so the student hears about a subject
that is too short at the subject step, not after pressing Send.
"""

from __future__ import annotations

from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.errors import InvalidInput
from counseldesk.i18n import t
from counseldesk.students.models import Student
from counseldesk.support import bot_render, keyboards, service
from counseldesk.support.bot_media import read_message
from counseldesk.support.bot_state import Composing, Draft, end_draft, get_draft, save_draft
from counseldesk.support.keyboards import CategoryCallback, DraftAction, DraftCallback
from counseldesk.telegram.replies import Replies


async def _ask_category(
    session: AsyncSession, state: FSMContext, draft: Draft, lang: str | None
) -> tuple[str, InlineKeyboardMarkup]:
    categories = await service.list_categories(session)
    if not categories:  # nothing to choose from: no topic, on to the next step
        draft = draft.with_(category_id=None, category_name=None)
        if draft.editing and draft.complete:
            await _to_summary(state, draft)
            return bot_render.summary(draft, lang), keyboards.confirm(lang)
        await save_draft(state, draft, Composing.subject)
        return t("support.compose.ask_subject", lang), keyboards.cancel_only(lang)
    await save_draft(state, draft, Composing.category)
    return t("support.compose.ask_category", lang), keyboards.categories(categories, lang)


async def _to_summary(state: FSMContext, draft: Draft) -> None:
    await save_draft(state, draft.with_(editing=False), Composing.confirm)


# --- the steps ---------------------------------------------------------------------------------


async def start(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    lang: str | None,
    replies: Replies,
) -> None:
    text, markup = await _ask_category(session, state, Draft(), lang)
    replies.show(query, text, markup)


async def chose_category(
    query: CallbackQuery,
    callback_data: CategoryCallback,
    state: FSMContext,
    session: AsyncSession,
    lang: str | None,
    replies: Replies,
) -> None:
    draft = await get_draft(state)
    if callback_data.category_id == keyboards.NO_CATEGORY:
        draft = draft.with_(category_id=None, category_name=None)
    else:
        try:
            category = await service.get_category(session, callback_data.category_id)
        except InvalidInput:
            replies.answer_callback(query.id, t("support.compose.category_gone", lang))
            return
        draft = draft.with_(category_id=category.id, category_name=category.name)
    if draft.editing:
        await _to_summary(state, draft)
        replies.show(query, bot_render.summary(draft, lang), keyboards.confirm(lang))
        return
    await save_draft(state, draft, Composing.subject)
    replies.show(query, t("support.compose.ask_subject", lang), keyboards.cancel_only(lang))


async def got_subject(
    message: Message, state: FSMContext, lang: str | None, replies: Replies
) -> None:
    if message.text is None:
        replies.send(t("support.compose.subject_not_text", lang), keyboards.cancel_only(lang))
        return
    try:
        subject = service.check_subject(message.text)
    except InvalidInput:
        replies.send(t("support.compose.bad_subject", lang), keyboards.cancel_only(lang))
        return
    draft = (await get_draft(state)).with_(subject=subject)
    if draft.editing and draft.complete:
        await _to_summary(state, draft)
        replies.send(bot_render.summary(draft, lang), keyboards.confirm(lang))
        return
    await save_draft(state, draft, Composing.body)
    replies.send(t("support.compose.ask_body", lang), keyboards.cancel_only(lang))


async def got_body(message: Message, state: FSMContext, lang: str | None, replies: Replies) -> None:
    incoming = read_message(message)
    if not incoming.supported:
        replies.send(t("support.compose.body_unsupported", lang), keyboards.cancel_only(lang))
        return
    try:
        service.check_body(incoming.body, media=incoming.media)
    except InvalidInput:
        # The only way a present text or attachment fails: the text is too long.
        replies.send(
            t("support.compose.body_too_long", lang, limit=service.MAX_BODY),
            keyboards.cancel_only(lang),
        )
        return
    draft = (await get_draft(state)).with_(
        body=incoming.body, media=incoming.media, message_id=message.message_id
    )
    await _to_summary(state, draft)
    replies.send(bot_render.summary(draft, lang), keyboards.confirm(lang))


async def typed_at_category(message: Message, lang: str | None, replies: Replies) -> None:
    replies.send(t("support.compose.use_category_buttons", lang))


async def typed_at_confirm(message: Message, lang: str | None, replies: Replies) -> None:
    replies.send(t("support.compose.use_buttons", lang))


# --- the summary's buttons ---------------------------------------------------------------------


async def send(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    student: Student,
    lang: str | None,
    replies: Replies,
) -> None:
    draft = await get_draft(state)
    if not draft.complete or draft.subject is None:
        await stale(query, lang, replies)
        return
    try:
        ticket, _ = await service.do_open_ticket(
            session,
            student,
            category_id=draft.category_id,
            subject=draft.subject,
            body=draft.body or "",
            media=draft.media,
            telegram_message_id=draft.message_id,
        )
    except InvalidInput:
        # The checks passed at each step, so what changed since is the topic (deactivated).
        retry = draft.with_(category_id=None, category_name=None, editing=True)
        text, markup = await _ask_category(session, state, retry, lang)
        replies.show(query, t("support.compose.category_gone", lang) + "\n\n" + text, markup)
        return
    await end_draft(state, active_ticket_id=ticket.id)
    replies.show(
        query,
        t("support.compose.opened", lang, subject=ticket.subject),
        keyboards.after_open(lang),
    )


async def edit(
    query: CallbackQuery,
    callback_data: DraftCallback,
    state: FSMContext,
    session: AsyncSession,
    lang: str | None,
    replies: Replies,
) -> None:
    draft = await get_draft(state)
    match callback_data.action:
        case DraftAction.EDIT:
            replies.show(
                query,
                t("support.compose.ask_what_to_edit", lang),
                keyboards.what_to_edit(lang),
            )
        case DraftAction.SUMMARY:
            replies.show(query, bot_render.summary(draft, lang), keyboards.confirm(lang))
        case DraftAction.EDIT_CATEGORY:
            text, markup = await _ask_category(session, state, draft.with_(editing=True), lang)
            replies.show(query, text, markup)
        case DraftAction.EDIT_SUBJECT:
            await save_draft(state, draft.with_(editing=True), Composing.subject)
            replies.show(query, t("support.compose.ask_subject", lang), keyboards.cancel_only(lang))
        case DraftAction.EDIT_BODY:
            await save_draft(state, draft.with_(editing=True), Composing.body)
            replies.show(query, t("support.compose.ask_body", lang), keyboards.cancel_only(lang))
        case _:
            await stale(query, lang, replies)


# --- leaving -----------------------------------------------------------------------------------


async def cancel_button(
    query: CallbackQuery, state: FSMContext, lang: str | None, replies: Replies
) -> None:
    await end_draft(state)
    text = t("support.compose.cancelled", lang) + "\n\n" + t("support.menu_title", lang)
    replies.show(query, text, keyboards.support_menu(lang))


async def cancel_command(
    message: Message, state: FSMContext, lang: str | None, replies: Replies
) -> None:
    """/cancel while composing drops the draft but keeps the active conversation."""
    await end_draft(state)
    replies.send(t("support.compose.cancelled", lang), keyboards.support_menu(lang))


async def abandon(event: object, state: FSMContext) -> None:
    """The student went to another screen half-way: drop the draft, let that screen show."""
    await end_draft(state)
    raise SkipHandler


async def stale(query: CallbackQuery, lang: str | None, replies: Replies) -> None:
    replies.answer_callback(query.id, t("support.stale", lang))

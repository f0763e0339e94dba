"""The student's side of the bot: registration on /start, the main menu, profile, help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.content.bot_texts import contact_text
from counseldesk.content.service import get_office_settings
from counseldesk.errors import Conflict, InvalidInput
from counseldesk.i18n import t
from counseldesk.students import keyboards, service
from counseldesk.students.models import Student
from counseldesk.telegram.replies import Replies


class Registering(StatesGroup):
    full_name = State()
    admission_no = State()
    year_of_study = State()
    phone = State()


def _show_menu(replies: Replies, lang: str | None) -> None:
    replies.send(t("menu.title", lang), keyboards.main_menu(lang))


# --- commands ---------------------------------------------------------------------------------


async def start(
    message: Message,
    state: FSMContext,
    student: Student | None,
    lang: str | None,
    replies: Replies,
    session: AsyncSession,
) -> None:
    if student is not None:
        await state.clear()
        replies.send(t("registration.already", lang, name=student.full_name))
        _show_menu(replies, lang)
        return
    await state.clear()
    await state.set_state(Registering.full_name)
    office = await get_office_settings(session)
    replies.send(t("registration.welcome", lang, office=office.office_name), ReplyKeyboardRemove())
    replies.send(t("registration.ask_name", lang))


async def cancel(message: Message, state: FSMContext, lang: str | None, replies: Replies) -> None:
    await state.clear()
    replies.send(t("common.cancelled", lang), ReplyKeyboardRemove())


async def menu(
    message: Message, student: Student | None, lang: str | None, replies: Replies
) -> None:
    if student is None:
        replies.send(t("common.register_first", lang))
        return
    _show_menu(replies, lang)


async def help_(
    message: Message, student: Student | None, lang: str | None, replies: Replies
) -> None:
    replies.send(t("help.text", lang), keyboards.back_to_menu(lang) if student else None)


# --- registration, one question at a time -----------------------------------------------------


async def got_name(message: Message, state: FSMContext, lang: str | None, replies: Replies) -> None:
    try:
        name = service.check_full_name(message.text)
    except InvalidInput:
        replies.send(t("registration.bad_name", lang))
        replies.send(t("registration.ask_name", lang))
        return
    await state.update_data(full_name=name)
    await state.set_state(Registering.admission_no)
    replies.send(t("registration.ask_admission", lang, name=name))


async def got_admission_no(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    lang: str | None,
    replies: Replies,
) -> None:
    assert message.from_user is not None
    try:
        admission_no = service.check_admission_no(message.text)
        await service.check_admission_no_free(session, admission_no, message.from_user.id)
    except InvalidInput:
        replies.send(t("registration.bad_admission", lang))
        return
    except Conflict:
        replies.send(t("registration.admission_taken", lang, admission_no=admission_no))
        return
    await state.update_data(admission_no=admission_no)
    await state.set_state(Registering.year_of_study)
    replies.send(t("registration.ask_year", lang), keyboards.years())


async def _accept_year(year: int, state: FSMContext, lang: str | None, replies: Replies) -> None:
    await state.update_data(year_of_study=year)
    await state.set_state(Registering.phone)
    replies.send(t("registration.ask_phone", lang), keyboards.share_phone(lang))


async def got_year_typed(
    message: Message, state: FSMContext, lang: str | None, replies: Replies
) -> None:
    try:
        year = service.check_year_of_study(message.text)
    except InvalidInput:
        replies.send(t("registration.bad_year", lang), keyboards.years())
        return
    await _accept_year(year, state, lang, replies)


async def got_year_button(
    query: CallbackQuery,
    callback_data: keyboards.YearCallback,
    state: FSMContext,
    lang: str | None,
    replies: Replies,
) -> None:
    replies.answer_callback(query.id)
    try:
        year = service.check_year_of_study(callback_data.year)
    except InvalidInput:
        replies.send(t("registration.bad_year", lang), keyboards.years())
        return
    await _accept_year(year, state, lang, replies)


async def got_contact(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    lang: str | None,
    replies: Replies,
) -> None:
    assert message.from_user is not None and message.contact is not None
    if message.contact.user_id != message.from_user.id:
        replies.send(t("registration.bad_phone_other", lang), keyboards.share_phone(lang))
        return
    data = await state.get_data()
    try:
        student = await service.do_register_student(
            session,
            service.Registration(
                telegram_user_id=message.from_user.id,
                full_name=data["full_name"],
                admission_no=data["admission_no"],
                year_of_study=data["year_of_study"],
                phone=message.contact.phone_number,
                language_code=message.from_user.language_code or "en",
            ),
        )
    except Conflict:
        # Someone else registered this admission number since it was checked: ask again.
        await state.set_state(Registering.admission_no)
        replies.send(
            t("registration.admission_taken", lang, admission_no=data["admission_no"]),
            ReplyKeyboardRemove(),
        )
        return
    except InvalidInput:
        replies.send(t("registration.bad_phone_text", lang), keyboards.share_phone(lang))
        return
    await state.clear()
    replies.send(t("registration.done", lang, name=student.full_name), ReplyKeyboardRemove())
    _show_menu(replies, student.language_code)


async def got_not_a_contact(message: Message, lang: str | None, replies: Replies) -> None:
    replies.send(t("registration.bad_phone_text", lang), keyboards.share_phone(lang))


async def stray_button_while_registering(
    query: CallbackQuery, lang: str | None, replies: Replies
) -> None:
    replies.answer_callback(query.id, t("common.unknown", lang))


# --- the menu ---------------------------------------------------------------------------------


async def menu_button(
    query: CallbackQuery,
    callback_data: keyboards.MenuCallback,
    student: Student | None,
    session: AsyncSession,
    lang: str | None,
    replies: Replies,
) -> None:
    if student is None:
        replies.answer_callback(query.id, t("common.register_first", lang))
        return
    replies.answer_callback(query.id)
    message_id = query.message.message_id if query.message else None
    back = keyboards.back_to_menu(lang)
    match callback_data.action:
        case "profile":
            text = t(
                "profile.text",
                lang,
                name=student.full_name,
                admission_no=student.admission_no,
                year=student.year_of_study,
                phone=student.phone,
            )
            markup = back
        case "contact":
            text, markup = contact_text(await get_office_settings(session), lang), back
        case "help":
            text, markup = t("help.text", lang), back
        case _:
            text, markup = t("menu.title", lang), keyboards.main_menu(lang)
    if message_id is None:
        replies.send(text, markup)
    else:
        replies.edit(message_id, text, markup)


async def anything_else(
    message: Message, student: Student | None, lang: str | None, replies: Replies
) -> None:
    if student is None:
        replies.send(t("common.register_first", lang))
        return
    replies.send(t("common.unknown", lang), keyboards.main_menu(lang))


def create_router() -> Router:
    """A fresh router per dispatcher (aiogram attaches a router to one dispatcher only)."""
    router = Router(name="students")
    router.message.register(start, CommandStart())
    router.message.register(cancel, Command("cancel"))
    router.message.register(menu, Command("menu"))
    router.message.register(help_, Command("help"))
    router.message.register(got_name, Registering.full_name)
    router.message.register(got_admission_no, Registering.admission_no)
    router.message.register(got_year_typed, Registering.year_of_study)
    router.callback_query.register(
        got_year_button, Registering.year_of_study, keyboards.YearCallback.filter()
    )
    router.message.register(got_contact, Registering.phone, F.contact)
    router.message.register(got_not_a_contact, Registering.phone)
    router.callback_query.register(stray_button_while_registering, StateFilter(Registering))
    router.callback_query.register(menu_button, keyboards.MenuCallback.filter())
    router.message.register(anything_else)
    return router

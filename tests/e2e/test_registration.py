"""Registration through the real bot and the Telegram emulator, with every validation error."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.bot_app import create_dispatcher
from counseldesk.runtime import Runtime
from counseldesk.students.models import Student, UserSession
from tests.e2e.harness import BotHarness, buttons, texts
from tests.factories import make_student


async def _count_students(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Student)) or 0)


async def test_a_new_student_registers_step_by_step(
    harness: BotHarness, session: AsyncSession
) -> None:
    jane = harness.student(first_name="Jane")

    welcome = await jane.say("/start")
    assert "Welcome" in welcome[0]["text"]
    assert "full name" in welcome[-1]["text"]

    reply = await jane.say("Jane Wanjiku")
    assert texts(reply) == [
        "Thanks, Jane Wanjiku. What is your admission number? (for example SC/1234/2024)"
    ]

    reply = await jane.say("sc/1234/2024")
    assert "year of study" in reply[0]["text"]
    assert buttons(reply[0]) == ["1", "2", "3", "4", "5", "6"]

    reply = await jane.press("3")
    assert "phone number" in reply[0]["text"]
    keyboard = jane.reply_keyboard()
    assert keyboard is not None
    assert keyboard["keyboard"][0][0]["request_contact"] is True

    reply = await jane.share_contact("+254 711 222 333")
    assert texts(reply)[0] == "✅ You're registered, Jane Wanjiku. Welcome!"
    assert "Main menu" in reply[-1]["text"]
    assert buttons(reply[-1]) == [
        "📅 Book appointment",
        "🗓 My appointments",
        "💬 Support",
        "👤 My profile",
        "📞 Contact",
        "❓ Help",
    ]
    assert jane.reply_keyboard() is None  # the share-contact keyboard is gone

    student = (
        await session.execute(select(Student).where(Student.telegram_user_id == jane.user_id))
    ).scalar_one()
    assert (student.full_name, student.admission_no, student.year_of_study, student.phone) == (
        "Jane Wanjiku",
        "SC/1234/2024",
        3,
        "+254711222333",
    )
    activity = await session.get(UserSession, jane.user_id)
    assert activity is not None and activity.first_name == "Jane"


async def test_each_invalid_answer_gets_a_clear_reply_and_the_same_question(
    harness: BotHarness, session: AsyncSession, runtime: Runtime
) -> None:
    # A dozen answers in a second is faster than flood control lets anyone type (its own tests
    # are in test_support_bot.py).
    harness.dispatcher = create_dispatcher(runtime, flood_rules=())
    tom = harness.student(first_name="Tom")
    await tom.say("/start")

    reply = await tom.say("R2D2")
    assert "doesn't look like a name" in reply[0]["text"]
    assert "full name" in reply[-1]["text"]
    reply = await tom.send_photo()
    assert "doesn't look like a name" in reply[0]["text"]

    await tom.say("Tom Otieno")
    reply = await tom.say("no spaces? allowed!")
    assert "3 to 32 characters" in reply[0]["text"]

    await tom.say("ED/77/2023")
    for bad in ("9", "two", "0"):
        reply = await tom.say(bad)
        assert texts(reply) == ["Please choose your year of study: a number from 1 to 6."]
        assert buttons(reply[0]) == ["1", "2", "3", "4", "5", "6"]
    reply = await tom.say("2")  # typing a valid year works as well as the buttons
    assert "phone number" in reply[0]["text"]

    reply = await tom.say("+254700000000")
    assert "Share my phone number" in reply[0]["text"]  # typing the number is not accepted
    reply = await tom.share_contact("+254799999999", of_user=123456)
    assert "someone else's contact" in reply[0]["text"]
    assert await _count_students(session) == 0

    reply = await tom.share_contact("+254700000000")
    assert "registered" in reply[0]["text"]
    assert await _count_students(session) == 1


async def test_an_admission_number_bound_to_another_account_is_refused(
    harness: BotHarness, session: AsyncSession
) -> None:
    owner = await make_student(session, telegram_user_id=111, admission_no="SC/500/2022")
    await session.commit()
    mallory = harness.student(first_name="Mallory")
    await mallory.say("/start")
    await mallory.say("Mallory Smith")

    reply = await mallory.say("sc/500/2022")
    assert "already registered to another Telegram account" in reply[0]["text"]
    assert "SC/500/2022" in reply[0]["text"]

    # Still asked for an admission number; the owner's record is untouched.
    reply = await mallory.say("SC/501/2022")
    assert "year of study" in reply[0]["text"]
    await session.refresh(owner)
    assert (owner.telegram_user_id, owner.full_name) == (111, owner.full_name)
    assert await _count_students(session) == 1


async def test_registration_resumes_after_a_restart(harness: BotHarness, runtime: Runtime) -> None:
    amy = harness.student(first_name="Amy")
    await amy.say("/start")
    await amy.say("Amy Chebet")
    # A new dispatcher and storage object: what a restarted process would have.
    harness.dispatcher = create_dispatcher(runtime)
    reply = await amy.say("BA/9/2025")
    assert "year of study" in reply[0]["text"]


async def test_cancel_stops_registration(harness: BotHarness) -> None:
    kim = harness.student(first_name="Kim")
    await kim.say("/start")
    reply = await kim.say("/cancel")
    assert "canceled" in reply[0]["text"]
    reply = await kim.say("Kim Mwangi")
    assert "register first" in reply[0]["text"]


async def test_a_registered_student_gets_the_menu_and_its_pages(
    harness: BotHarness, session: AsyncSession
) -> None:
    await make_student(
        session, telegram_user_id=222, full_name="Faith <Achieng>", admission_no="SC/1/2020"
    )
    await session.commit()
    faith = harness.student(user_id=222, first_name="Faith")

    reply = await faith.say("/start")
    assert texts(reply)[0] == "You're already registered, Faith <Achieng>."
    menu_message_id = reply[-1]["message_id"]

    reply = await faith.press("👤 My profile")
    assert reply[0]["message_id"] == menu_message_id  # the menu message is edited in place
    assert "Admission number: SC/1/2020" in reply[0]["text"]
    assert "Faith <Achieng>" in reply[0]["text"]  # escaped on the way out, shown as typed

    reply = await faith.press("⬅️ Main menu")
    assert "Main menu" in reply[0]["text"]
    reply = await faith.press("❓ Help")
    assert "How this bot works" in reply[0]["text"]

    reply = await faith.say("hello?")  # free text: support offers a conversation
    assert "hasn't been passed on" in reply[0]["text"]
    assert buttons(reply[0])[0] == "✍️ Start a conversation"


async def test_contact_details_come_from_the_office_settings_and_are_escaped(
    harness: BotHarness, session: AsyncSession
) -> None:
    from counseldesk.content.service import do_update_office_settings

    await make_student(session, telegram_user_id=333)
    await do_update_office_settings(
        session, office_name="Wellness & Counseling", phone="+254 1", location="Block <B>, room 2"
    )
    await session.commit()
    student = harness.student(user_id=333)
    await student.say("/menu")
    reply = await student.press("📞 Contact")
    assert "Wellness & Counseling" in reply[0]["text"]
    assert "Block <B>, room 2" in reply[0]["text"]


async def test_an_unregistered_user_is_asked_to_register(harness: BotHarness) -> None:
    stranger = harness.student(first_name="Stranger")
    reply = await stranger.say("hi")
    assert texts(reply) == ["Please register first — it takes a minute. Send /start to begin."]
    reply = await stranger.say("/menu")
    assert "register first" in reply[0]["text"]


async def test_a_repeated_update_is_handled_once(
    harness: BotHarness, session: AsyncSession
) -> None:
    joe = harness.student(first_name="Joe")
    harness.state.user_sends_text(joe.user_id, "/start")
    updates = await harness.bot.get_updates(timeout=0)
    assert len(updates) == 1
    await harness.dispatcher.feed_update(harness.bot, updates[0])
    await harness.dispatcher.feed_update(harness.bot, updates[0])  # Telegram delivers it again
    welcome = [m for m in joe.bot_messages() if "Welcome" in (m["text"] or "")]
    assert len(welcome) == 1

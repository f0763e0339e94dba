"""The dashboard in Chromium: log in, see the home page, register a student in the simulator."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from counseldesk.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD, STUDENTS
from counseldesk.serve import System
from counseldesk.students import service as students

pytestmark = pytest.mark.browser


async def _log_in(page: Page) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.get_by_label("Email").fill(DEMO_ADMIN_EMAIL)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_admin_registers_a_student_in_the_simulator(
    page: Page, system: System, artifacts: Path
) -> None:
    await _log_in(page)

    # The home page: a greeting for the demo admin and the office's numbers.
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Good (morning|afternoon|evening), Office$")
    )
    stats = page.get_by_role("region", name="Office at a glance")
    await expect(stats.locator(".stat").filter(has_text="Registered students")).to_contain_text(
        str(len(STUDENTS))
    )
    await expect(stats.locator(".stat").filter(has_text="Counselors")).to_contain_text("4")

    await page.get_by_role("link", name="Student simulator").click()
    await expect(page.get_by_role("heading", name="Student simulator")).to_be_visible()
    side = page.get_by_role("complementary", name="Test students")
    await expect(side.get_by_role("button", name=re.compile("Faith Achieng"))).to_be_visible()

    # A new test student, who starts the bot.
    await side.get_by_text("New test student").click()
    await side.get_by_label("First name").fill("Wanjiru")
    await side.get_by_label("Last name").fill("Test")
    await side.get_by_role("button", name="Create test student").click()
    chat = page.get_by_role("region", name="Chat with the bot")
    await expect(chat.locator("#sim-name")).to_have_text("Wanjiru Test")
    message_box = chat.get_by_label("Message", exact=True)
    bot_says = chat.locator(".sim-msg-bot")
    await message_box.fill("/start")
    await message_box.press("Enter")
    await expect(chat.locator(".sim-msg-student").last).to_have_text(re.compile("/start"))
    await expect(bot_says.last).to_contain_text("What is your full name?")

    # Name, admission number, then a year the bot refuses before the button is used.
    await message_box.fill("Wanjiru Kamau")
    await message_box.press("Enter")
    await expect(bot_says.last).to_contain_text("What is your admission number?")
    await message_box.fill("sc/2001/2026")
    await message_box.press("Enter")
    await expect(bot_says.last).to_contain_text("Which year of study are you in?")
    await message_box.fill("9")
    await chat.get_by_role("button", name="Send").click()
    await expect(bot_says.last).to_contain_text("a number from 1 to 6")
    await bot_says.last.get_by_role("button", name="3", exact=True).click()

    # The phone comes from the reply keyboard's share-contact button.
    await expect(bot_says.last).to_contain_text("share your phone number")
    await chat.get_by_role("button", name="📱 Share my phone number").click()
    phone = chat.get_by_label("Phone number to share")
    await expect(phone).to_have_value(re.compile(r"^\+2547\d{8}$"))
    await phone.fill("+254 712 345 678")
    await page.screenshot(path=artifacts / "simulator-share-contact.png")
    await chat.get_by_role("button", name="Share contact").click()

    await expect(chat.locator(".sim-msg-bot").filter(has_text="You're registered")).to_have_text(
        re.compile("You're registered, Wanjiru Kamau")
    )
    menu = bot_says.last
    await expect(menu).to_contain_text("Main menu")
    await expect(chat.get_by_role("button", name="📱 Share my phone number")).to_be_hidden()
    await expect(side.get_by_role("button", name=re.compile("Wanjiru Kamau"))).to_contain_text(
        "Registered · SC/2001/2026"
    )

    # A menu button edits the menu message in place.
    count = await bot_says.count()
    await menu.get_by_role("button", name="👤 My profile").click()
    await expect(bot_says.last).to_contain_text("Year of study: 3")
    await expect(bot_says).to_have_count(count)

    await page.screenshot(path=artifacts / "simulator-desktop.png")
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.screenshot(path=artifacts / "simulator-phone-chat.png")
    await chat.get_by_role("button", name="Back to the test students").click()
    await expect(side).to_be_visible()
    await page.screenshot(path=artifacts / "simulator-phone-list.png")

    assert system.emulator is not None
    users = system.emulator.state.users.values()
    (user_id,) = [user.id for user in users if user.first_name == "Wanjiru"]
    async with system.runtime.db.unit_of_work() as session:
        student = await students.get_by_telegram_id(session, user_id)
    assert student is not None
    assert (student.full_name, student.admission_no, student.year_of_study, student.phone) == (
        "Wanjiru Kamau",
        "SC/2001/2026",
        3,
        "+254712345678",
    )


async def test_demo_student_sends_a_photo_and_a_document(
    page: Page, system: System, artifacts: Path
) -> None:
    await _log_in(page)
    await page.goto("/simulator")
    side = page.get_by_role("complementary", name="Test students")
    chat = page.get_by_role("region", name="Chat with the bot")

    # A demo student lives in the database only until picked: then the emulator learns of them.
    await side.get_by_role("button", name=re.compile("Kevin Mutua")).click()
    await expect(chat.locator("#sim-name")).to_have_text("Kevin Mutua")
    message_box = chat.get_by_label("Message", exact=True)
    await message_box.fill("my timetable")  # what the box holds becomes the caption
    async with page.expect_file_chooser() as chooser:
        await chat.get_by_role("button", name="Attach a file").click()
        await chat.get_by_role("button", name="Photo").click()
    await (await chooser.value).set_files(
        {"name": "timetable.png", "mimeType": "image/png", "buffer": _png()}
    )
    photo = chat.locator(".sim-msg-student img")
    await expect(photo).to_be_visible()
    await expect(chat.locator(".sim-msg-student").last).to_contain_text("my timetable")
    assert await photo.evaluate("image => image.naturalWidth") == 160

    async with page.expect_file_chooser() as chooser:
        await chat.get_by_role("button", name="Attach a file").click()
        await chat.get_by_role("button", name="Document").click()
    await (await chooser.value).set_files(
        {"name": "fees <2026>.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 test"}
    )
    document = chat.locator(".sim-msg-student a.sim-file")
    await expect(document).to_contain_text("fees <2026>.pdf")
    # Whatever the bot makes of a document, it answers (live, without a reload).
    await expect(chat.locator(".sim-msg").last).to_have_class(re.compile("sim-msg-bot"))

    async with page.expect_file_chooser() as chooser:
        await chat.get_by_role("button", name="Attach a file").click()
        await chat.get_by_role("button", name="Voice message").click()
    await (await chooser.value).set_files(
        {"name": "note.ogg", "mimeType": "audio/ogg", "buffer": b"OggS" + b"\0" * 60}
    )
    await expect(chat.locator(".sim-msg-student audio")).to_have_count(1)
    await page.screenshot(path=artifacts / "simulator-media.png")

    # The bot deletes one of its messages: it leaves the chat at once.
    assert system.bot is not None
    await expect(chat.locator(".sim-msg").last).to_have_class(re.compile("sim-msg-bot"))
    reply = chat.locator(".sim-msg-bot").last
    reply_id = await reply.get_attribute("data-message-id")
    assert reply_id is not None
    await system.bot.delete_message(chat_id=STUDENTS[1][0], message_id=int(reply_id))
    await expect(chat.locator(f'.sim-msg[data-message-id="{reply_id}"]')).to_have_count(0)


def _png(width: int = 160, height: int = 90) -> bytes:
    """A real PNG in the dashboard's teal, so the browser has something to decode and show."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\0" + b"\x0f\x76\x6e" * width) * height)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )

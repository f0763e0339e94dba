"""The support inbox and chat in Chromium, against the whole running system (web, bot polling,
outbox worker, Telegram emulator): open the inbox, open a long conversation, scroll up for older
messages, reply and see the reply reach the student's Telegram chat, and see what the student
writes back appear without a reload — in the chat and in the inbox."""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize, expect
from sqlalchemy import select, update

from counseldesk.demo import COUNSELORS, DEMO_PASSWORD
from counseldesk.serve import System
from counseldesk.staff.models import Counselor
from counseldesk.support import service
from counseldesk.support.models import SupportCategory, SupportMessage, TicketPriority
from counseldesk.telegram.emulator.server import EmulatorServer
from tests.factories import make_student

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 375, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Telegram ids of this test's students (the demo's are 700_000_00x).
STUDENT_ID = 7_300_000_001
OTHER_ID = 7_300_000_002
SEEDED_ROUNDS = 40  # a student message, a note or a reply each: more than one page of 50


@dataclass
class Seeded:
    ticket_id: int
    first_body: str
    counselor_email: str


def _png(width: int = 240, height: int = 160) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\0" + bytes((40 + y % 120, 118, 110)) * width for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def _seed(system: System) -> Seeded:
    """A conversation of 90-odd entries over three days, through the support services, and a
    second ticket with crisis wording so the inbox has something urgent to show."""
    assert system.emulator is not None
    for user_id, first_name in ((STUDENT_ID, "Achieng"), (OTHER_ID, "Otieno")):
        if user_id not in system.emulator.state.users:
            system.emulator.state.create_user(user_id=user_id, first_name=first_name)
    async with system.runtime.db.unit_of_work() as session:
        counselor = await session.scalar(
            select(Counselor).where(Counselor.email == COUNSELORS[1][0])
        )
        colleague = await session.scalar(
            select(Counselor).where(Counselor.email == COUNSELORS[0][0])
        )
        assert counselor is not None and colleague is not None
        category = await session.scalar(
            select(SupportCategory).where(SupportCategory.name == "Academic")
        )
        student = await make_student(
            session,
            telegram_user_id=STUDENT_ID,
            full_name="Achieng Wambui",
            admission_no="SC/4410/2024",
            year_of_study=2,
        )
        first_body = "Hello, I have been struggling to keep up with my coursework this term."
        ticket, _ = await service.do_open_ticket(
            session,
            student,
            category_id=category.id if category else None,
            subject="Falling behind in my courses",
            body=first_body,
        )
        await service.do_take(session, colleague, ticket)
        for n in range(1, SEEDED_ROUNDS + 1):
            await service.do_add_student_message(
                session, student, ticket, body=f"Student message {n}: it is hard to focus."
            )
            if n % 10 == 0:
                await service.do_add_note(
                    session, colleague, ticket, body=f"Note {n}: follow up with the tutor."
                )
            elif n % 3 == 0:
                await service.do_reply(
                    session, colleague, ticket, body=f"Reply {n}: shall we meet on Thursday?"
                )
        await service.do_update_ticket(session, colleague, ticket, priority=TicketPriority.HIGH)

        other = await make_student(
            session,
            telegram_user_id=OTHER_ID,
            full_name="Otieno Kamau",
            admission_no="EN/2071/2022",
            year_of_study=4,
        )
        await service.do_open_ticket(
            session,
            other,
            category_id=None,
            subject="Can't cope anymore",
            body="Everything is too much, sometimes I want to die.",
        )
    # Spread the conversation over three days (the services stamp "now"), for day separators.
    async with system.runtime.db.unit_of_work() as session:
        ids = list(
            await session.scalars(
                select(SupportMessage.id)
                .where(SupportMessage.ticket_id == ticket.id)
                .order_by(SupportMessage.id)
            )
        )
        start = datetime.now(UTC) - timedelta(days=2, hours=3)
        step = (datetime.now(UTC) - timedelta(minutes=5) - start) / len(ids)
        for index, message_id in enumerate(ids):
            await session.execute(
                update(SupportMessage)
                .where(SupportMessage.id == message_id)
                .values(created_at=start + step * index)
            )
    return Seeded(ticket.id, first_body, COUNSELORS[1][0])


async def _log_in(page: Page, email: str) -> None:
    await page.goto("/support")
    await expect(page).to_have_url(re.compile(r"/login\?next=/support$"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/support$"))


async def _eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.05)


def _bot_messages(emulator: EmulatorServer, user_id: int) -> list[dict[str, Any]]:
    entries = emulator.state.chat_feed(user_id)["entries"]
    return [e for e in entries if e.get("type") == "message" and e.get("direction") == "out"]


async def test_a_counselor_works_a_long_conversation_live(
    page: Page, system: System, artifacts: Path
) -> None:
    assert system.emulator is not None
    emulator = system.emulator
    seeded = await _seed(system)
    await _log_in(page, seeded.counselor_email)

    # --- the inbox ---------------------------------------------------------------------------
    await expect(page.get_by_role("heading", name="Support inbox")).to_be_visible()
    await expect(page.locator("#live-status")).to_have_text("Live")
    rows = page.locator("#ticket-list > li")
    row = rows.filter(has_text="Falling behind in my courses")
    await expect(row).to_contain_text("Achieng Wambui")
    await expect(row.locator(".unread-badge")).to_have_text(re.compile(r"^\d+$"))
    await expect(row.locator(".badge-high")).to_have_text("High")
    crisis = rows.filter(has_text="Can't cope anymore")
    await expect(crisis.locator(".badge-crisis")).to_have_text("Crisis")
    await expect(crisis.locator(".ticket-row")).to_have_class(re.compile("is-crisis"))

    # Filters: the seeded ticket is a colleague's, so not under "Mine", but under "All".
    await page.get_by_role("radio", name="Mine").check()
    await expect(page).to_have_url(re.compile(r"assigned=mine"))
    await expect(page.locator("#ticket-empty")).to_be_visible()
    await page.get_by_role("radio", name="All").check()
    await expect(row).to_be_visible()
    await page.get_by_label("Search").fill("coursework")
    await page.get_by_label("Search").press("Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Falling behind in my courses")
    await page.get_by_label("Search").fill("")
    await page.get_by_label("Search").press("Enter")
    await expect(crisis).to_be_visible()
    await page.screenshot(path=artifacts / "support-inbox-desktop.png")
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / "support-inbox-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)

    # --- the chat: the newest 50, older ones when scrolled to the top --------------------------
    await row.locator("a").click()
    await expect(page).to_have_url(re.compile(rf"/support/{seeded.ticket_id}$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Achieng Wambui")
    timeline = page.locator("#timeline")
    messages = page.locator("#timeline-items .msg")
    await expect(messages).to_have_count(50)
    await expect(page.locator(".day-separator").first).to_be_visible()
    await expect(page.locator(".msg-note").first).to_contain_text("Internal note")
    await expect(page.locator("#ticket-priority")).to_have_value("high")
    # The view opens at the bottom, on the newest message.
    last = messages.last
    await expect(last).to_be_in_viewport()
    await expect(page.locator("#timeline-items")).not_to_contain_text(seeded.first_body)

    top_before = messages.first
    top_id = await top_before.get_attribute("data-id")
    await timeline.evaluate("el => { el.scrollTop = 0; }")
    await expect(page.locator("#timeline-items")).to_contain_text(seeded.first_body)
    total = await messages.count()
    assert total > 50
    # Scroll position kept: the message that was at the top is still on screen, not thrown
    # down by the prepended page.
    await expect(page.locator(f'.msg[data-id="{top_id}"]')).to_be_in_viewport()
    await expect(page.locator("#timeline-start")).to_be_visible()
    await page.screenshot(path=artifacts / "support-chat-older.png")

    # --- a reply: shown at once, then delivered to the student's Telegram chat ------------------
    delivered_before = len(_bot_messages(emulator, STUDENT_ID))
    box = page.get_by_label("Message", exact=True)
    await box.fill("Thank you for writing. Could you come by on Thursday at 10?")
    await box.press("Enter")
    mine = page.locator(".msg-counselor").filter(has_text="Could you come by on Thursday")
    await expect(mine).to_have_count(1)
    await expect(mine).to_be_in_viewport()
    await expect(mine.locator(".delivery")).to_have_text("Sent", timeout=10_000)
    delivered = await _eventually(
        lambda: [
            e
            for e in _bot_messages(emulator, STUDENT_ID)[delivered_before:]
            if "Could you come by on Thursday" in (e.get("text") or "")
        ]
    )
    assert "Brian Kiptoo" in delivered[0]["text"]  # replies carry the counselor's name
    await expect(page.locator("#ticket-status")).to_have_value("replied")

    # An internal note: in the timeline, never in the student's chat.
    await page.get_by_role("radio", name="Internal note").check()
    await box.fill("Student sounds calmer today.")
    await box.press("Enter")
    await expect(
        page.locator(".msg-note").filter(has_text="Student sounds calmer today.")
    ).to_contain_text("Internal note · You")
    await page.get_by_role("radio", name="Reply").check()

    # --- the student answers (Telegram "Reply" on the counselor's message) ----------------------
    emulator.state.user_sends_text(
        STUDENT_ID,
        "Thursday at 10 works for me, thank you!",
        reply_to_message_id=delivered[0]["message_id"],
    )
    answer = page.locator(".msg-student").filter(has_text="Thursday at 10 works for me")
    await expect(answer).to_be_visible(timeout=10_000)
    await expect(answer).to_be_in_viewport()
    # The student wrote after the reply: the ticket is worked on again, and the open chat's
    # status says so without a reload.
    await expect(page.locator("#ticket-status")).to_have_value("in_progress")
    # On screen and at the bottom: the chat marks it read (the inbox below counts on that).
    async with page.expect_response(
        lambda r: r.url.endswith(f"/tickets/{seeded.ticket_id}/read") and r.status == 204
    ):
        emulator.state.user_sends_media(STUDENT_ID, "photo", _png(), caption="My timetable")
    photo = page.locator(".msg-student").filter(has_text="My timetable")
    await expect(photo.locator("img")).to_be_visible(timeout=10_000)
    await expect(photo.locator("img")).to_have_js_property("complete", True)
    assert await photo.locator("img").evaluate("img => img.naturalWidth") == 240
    assert not any("calmer" in (e.get("text") or "") for e in _bot_messages(emulator, STUDENT_ID))
    await page.screenshot(path=artifacts / "support-chat-desktop.png")
    await page.set_viewport_size(PHONE)
    await timeline.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    await page.screenshot(path=artifacts / "support-chat-phone.png")
    await page.set_viewport_size(DESKTOP)

    # --- the inbox follows live too ------------------------------------------------------------
    await page.goto("/support")
    await expect(page.locator("#live-status")).to_have_text("Live")
    first_row = page.locator("#ticket-list > li").first
    emulator.state.user_sends_text(STUDENT_ID, "One more question about Thursday.")
    await expect(first_row).to_contain_text("One more question about Thursday.", timeout=10_000)
    await expect(first_row.locator(".unread-badge")).to_have_text("1")
    await page.screenshot(path=artifacts / "support-inbox-live.png")

"""The appointments pages in Chromium, against the whole running system (web, bot polling, outbox
worker, Telegram emulator): a counselor confirms and reschedules from the calendar and the
student gets each message in Telegram; a booking a student makes meanwhile appears without a
reload; the availability editor saves working hours, and an absence lists the appointments it
collides with, to move or cancel with a message to each student."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect
from sqlalchemy import delete, select

from counseldesk.appointments import schedule, service
from counseldesk.appointments.availability import HoursRange
from counseldesk.appointments.models import Appointment, ClosedDay
from counseldesk.demo import DEMO_PASSWORD
from counseldesk.serve import System
from counseldesk.staff import service as staff
from counseldesk.staff.models import Counselor
from counseldesk.students.models import Student
from counseldesk.telegram.emulator.server import EmulatorServer
from counseldesk.telegram.models import Notification
from tests.factories import make_student

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 800}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Telegram ids of this module's students (the demo's are 700_000_00x, the inbox test's 730...).
WANJIKU, KEVIN, FAITH, PETER, MERCY = (7_400_000_001 + n for n in range(5))


# --- arranging ---------------------------------------------------------------------------------


@dataclass
class Made:
    """What a test added to the shared live database; removed after it, because the other
    browser tests count the demo's students and counselors."""

    counselors: list[int] = field(default_factory=list)
    students: list[int] = field(default_factory=list)
    telegram_ids: list[int] = field(default_factory=list)


@pytest.fixture
async def made(system: System) -> AsyncIterator[Made]:
    made = Made()
    yield made
    async with system.runtime.db.unit_of_work() as session:
        await session.execute(
            delete(Appointment).where(
                Appointment.student_id.in_(made.students)
                | Appointment.counselor_id.in_(made.counselors)
            )
        )
        # Their reminders and notices (already sent or not) go with them.
        await session.execute(
            delete(Notification).where(Notification.telegram_user_id.in_(made.telegram_ids))
        )
        await session.execute(delete(Student).where(Student.id.in_(made.students)))
        # Hours, absences and login sessions go with the counselor (ON DELETE CASCADE).
        await session.execute(delete(Counselor).where(Counselor.id.in_(made.counselors)))


async def _counselor(system: System, made: Made, email: str, name: str) -> Counselor:
    """A counselor of the test's own (the demo's have demo bookings that could collide)."""
    async with system.runtime.db.unit_of_work() as session:
        counselor = await staff.create_counselor(
            session, email=email, full_name=name, password=DEMO_PASSWORD
        )
    made.counselors.append(counselor.id)
    return counselor


async def _student(
    system: System, made: Made, telegram_id: int, name: str, admission_no: str
) -> Student:
    """A registered student who also exists in the emulator, so messages to them arrive."""
    assert system.emulator is not None
    if telegram_id not in system.emulator.state.users:
        system.emulator.state.create_user(user_id=telegram_id, first_name=name.split()[0])
    async with system.runtime.db.unit_of_work() as session:
        student = await make_student(
            session, telegram_user_id=telegram_id, full_name=name, admission_no=admission_no
        )
    made.students.append(student.id)
    made.telegram_ids.append(telegram_id)
    return student


async def _open_days(system: System, after: date, count: int) -> list[date]:
    """The next `count` days after `after` the office is open (the demo closes a holiday)."""
    async with system.runtime.db.unit_of_work() as session:
        closed = set(await session.scalars(select(ClosedDay.day).where(ClosedDay.day > after)))
    days: list[date] = []
    day = after
    while len(days) < count:
        day += timedelta(days=1)
        if day not in closed:
            days.append(day)
    return days


def _at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


async def _book(system: System, student: Student, counselor: Counselor, starts_at: datetime) -> int:
    """A booking as the bot makes it (the service a student's booking goes through)."""
    async with system.runtime.db.unit_of_work() as session:
        appointment = await service.do_book(
            session,
            system.runtime.settings,
            student,
            counselor_id=counselor.id,
            starts_at=starts_at,
            reason="Exam anxiety",
        )
        return appointment.id


# --- observing ---------------------------------------------------------------------------------


async def _log_in(page: Page, email: str, path: str) -> None:
    await page.goto(path)
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(path) + "$"))


async def _eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.05)


def _told(emulator: EmulatorServer, user_id: int, words: str) -> list[str]:
    """What the bot sent the student that contains `words`."""
    entries = emulator.state.chat_feed(user_id)["entries"]
    return [
        e["text"]
        for e in entries
        if e.get("type") == "message" and e.get("direction") == "out" and words in e.get("text", "")
    ]


def _long_day(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _short_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


async def _status_in_database(system: System, appointment_id: int) -> tuple[str, datetime]:
    async with system.runtime.db.unit_of_work() as session:
        appointment = await session.get(Appointment, appointment_id)
        assert appointment is not None
        return appointment.status.value, appointment.starts_at


# --- the calendar ------------------------------------------------------------------------------


async def test_a_counselor_confirms_and_reschedules_and_sees_bookings_live(
    page: Page, system: System, made: Made, artifacts: Path
) -> None:
    assert system.emulator is not None
    emulator = system.emulator
    tz = system.runtime.settings.tz
    counselor = await _counselor(system, made, "daniel.mwangi@counseldesk.example", "Daniel Mwangi")
    async with system.runtime.db.unit_of_work() as session:
        every_day: dict[int, Sequence[HoursRange]] = {
            day: [HoursRange(time(8), time(18))] for day in range(7)
        }
        await schedule.set_weekly_hours(
            session, counselor.id, schedule.check_weekly_hours(60, every_day)
        )
    wanjiku = await _student(system, made, WANJIKU, "Wanjiku Njeri", "SC/5101/2024")
    kevin = await _student(system, made, KEVIN, "Kevin Omondi", "ED/3320/2023")
    faith = await _student(system, made, FAITH, "Faith Chebet", "BS/0042/2025")
    today = datetime.now(tz).date()
    first, second = await _open_days(system, today, 2)
    booked = await _book(system, wanjiku, counselor, _at(first, 10, tz))

    await _log_in(page, counselor.email, "/appointments")
    await expect(page.get_by_role("heading", name="Appointments", level=1)).to_be_visible()
    await expect(page.locator("#live-status")).to_have_text("Live")
    # The day view opens on the office's today, one column per counselor, today marked.
    await expect(page.locator("#range-label")).to_have_text(_long_day(today))
    await expect(page.locator("#range-today")).to_have_text("Today")
    await expect(page.locator(".cal-col-head", has_text="Daniel Mwangi (you)")).to_be_visible()

    # --- the next day: the pending booking, confirmed ----------------------------------------
    if first != today + timedelta(days=1):
        await page.get_by_label("Date", exact=True).fill(first.isoformat())
    else:
        await page.get_by_role("button", name="Next day").click()
    await expect(page.locator("#range-label")).to_have_text(_long_day(first))
    await expect(page.locator("#range-today")).to_be_hidden()
    block = page.locator(".appt-block", has_text="Wanjiku Njeri")
    await expect(block).to_contain_text("10:00–11:00")
    await expect(block).to_have_class(re.compile("appt-block-pending"))
    await page.screenshot(path=artifacts / "appointments-day.png")

    await block.click()
    panel = page.locator("#detail")
    await expect(panel.get_by_role("heading", name="Wanjiku Njeri")).to_be_focused()
    facts = panel.locator(".detail-facts")
    await expect(facts).to_contain_text("Pending")
    await expect(facts).to_contain_text("Exam anxiety")
    # Not started yet: no completed / no-show.
    await expect(panel.get_by_role("button", name="Mark completed")).to_have_count(0)
    await panel.get_by_role("button", name="Confirm").click()
    await expect(panel.get_by_role("status")).to_contain_text("Confirmed")
    await expect(facts.locator(".badge")).to_have_text("Confirmed")
    await expect(block).to_have_class(re.compile("appt-block-confirmed"))
    await _eventually(lambda: _told(emulator, WANJIKU, "is confirmed"))
    assert (await _status_in_database(system, booked))[0] == "confirmed"

    # --- reschedule: a day, a free time; taken meanwhile, so an alternative ------------------
    await panel.get_by_role("button", name="Reschedule").click()
    picker = panel.locator("form.picker")
    await expect(picker.get_by_label("Counselor")).to_have_value(str(counselor.id))
    await picker.locator(f'.day-button[data-day="{second.isoformat()}"]').click()
    await picker.get_by_role("button", name="14:00", exact=True).click()
    await expect(picker.get_by_role("button", name=re.compile("^Move to"))).to_have_text(
        f"Move to {_short_day(second)}, 14:00"
    )
    # A student books that very time through the bot before the counselor presses the button.
    await _book(system, kevin, counselor, _at(second, 14, tz))
    await expect(page.locator(".toast", has_text="New booking: Kevin Omondi")).to_be_visible(
        timeout=10_000
    )
    await picker.get_by_role("button", name=re.compile("^Move to")).click()
    await expect(picker.get_by_role("alert")).to_contain_text("is not a free slot")
    alternatives = picker.locator(".picker-alternatives .slot-button")
    await expect(alternatives.first).to_be_visible()
    await expect(alternatives.filter(has_text="14:00")).to_have_count(0)
    await page.screenshot(path=artifacts / "appointments-reschedule-taken.png")
    await alternatives.filter(has_text="15:00").click()
    await picker.get_by_role("button", name=f"Move to {_short_day(second)}, 15:00").click()
    await expect(panel.get_by_role("status")).to_contain_text(
        f"Moved to {_short_day(second)}, 15:00–16:00"
    )
    moved = await _eventually(lambda: _told(emulator, WANJIKU, "has moved"))
    assert "Daniel Mwangi" in moved[0]
    status, starts_at = await _status_in_database(system, booked)
    assert (status, starts_at) == ("confirmed", _at(second, 15, tz))
    # It left this day's view.
    await expect(page.locator(".appt-block", has_text="Wanjiku Njeri")).to_have_count(0)
    await page.get_by_role("button", name="Close the details").click()
    await expect(panel).to_be_hidden()

    # --- a student books while the counselor looks: it appears without a reload --------------
    await page.get_by_label("Counselor").select_option(label="Only me")
    await expect(page).to_have_url(re.compile("counselor=mine"))
    await _book(system, faith, counselor, _at(first, 16, tz))
    arrived = page.locator(".appt-block", has_text="Faith Chebet")
    await expect(arrived).to_be_visible(timeout=10_000)
    await expect(arrived).to_contain_text("16:00–17:00")
    await expect(page.locator(".toast", has_text="New booking: Faith Chebet")).to_be_visible()
    await page.screenshot(path=artifacts / "appointments-day-live.png")

    # --- the week and the list -------------------------------------------------------------
    await page.get_by_role("radio", name="Week").check()
    await expect(page.locator(".cal-week .cal-col-head")).to_have_count(7)
    if first - timedelta(days=first.weekday()) == today - timedelta(days=today.weekday()):
        await expect(page.locator(".cal-col-head.is-today")).to_contain_text("Today")
    await page.screenshot(path=artifacts / "appointments-week.png")
    await page.get_by_role("radio", name="List").check()
    rows = page.locator("#appt-list > li")
    await expect(rows.filter(has_text="Wanjiku Njeri")).to_contain_text("Confirmed")
    await expect(rows.filter(has_text="Kevin Omondi")).to_contain_text("Pending")
    await page.get_by_label("Status").select_option(label="Pending")
    await expect(rows.filter(has_text="Wanjiku Njeri")).to_have_count(0)
    await expect(rows.filter(has_text="Faith Chebet")).to_be_visible()
    await page.get_by_label("Status").select_option(label="Any status")
    await rows.filter(has_text="Wanjiku Njeri").get_by_role("button").click()
    await expect(panel.locator(".detail-facts")).to_contain_text("Moved")
    await page.screenshot(path=artifacts / "appointments-list.png")
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / "appointments-list-phone.png", full_page=True)
    await page.get_by_role("button", name="Close the details").click()
    await page.get_by_role("radio", name="Day").check()
    await page.screenshot(path=artifacts / "appointments-day-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)

    # --- today, mid-morning in the office: the "now" line crosses today's columns --------------
    await page.clock.set_fixed_time(datetime.combine(today, time(11, 30), tzinfo=tz))
    await page.goto("/appointments")
    await expect(page.locator("#range-label")).to_have_text(_long_day(today))
    now_line = page.locator(".cal-col.is-today .now-line")
    await expect(now_line.first).to_have_attribute("title", "Now (11:30)")
    await expect(page.locator(".now-line.has-dot")).to_have_count(1)
    await page.screenshot(path=artifacts / "appointments-today.png")


# --- the availability editor -------------------------------------------------------------------


async def _range_inputs(day: Locator) -> list[tuple[str, str]]:
    rows = day.locator(".hours-range")
    return [
        (
            await rows.nth(i).locator(".range-start").input_value(),
            await rows.nth(i).locator(".range-end").input_value(),
        )
        for i in range(await rows.count())
    ]


async def test_the_availability_editor_saves_hours_and_an_absence_lists_its_collisions(
    page: Page, system: System, made: Made, artifacts: Path
) -> None:
    assert system.emulator is not None
    emulator = system.emulator
    tz = system.runtime.settings.tz
    counselor = await _counselor(system, made, "lucy.achieng@counseldesk.example", "Lucy Achieng")
    peter = await _student(system, made, PETER, "Peter Kariuki", "EN/7781/2022")
    mercy = await _student(system, made, MERCY, "Mercy Atieno", "SC/6650/2025")

    await _log_in(page, counselor.email, "/appointments/availability")
    await expect(page.get_by_role("heading", name="Working hours & absences")).to_be_visible()
    await expect(page.locator("#editing-who")).to_contain_text("Your availability")
    save = page.get_by_role("button", name="Save working hours")
    await expect(save).to_be_enabled()
    # Not an administrator: no closed days, no counselor picker.
    await expect(page.get_by_role("heading", name="Office closed days")).to_have_count(0)

    # --- the week: Monday 9-12 and 13-17, Tuesday 9-17, half-hour slots ----------------------
    monday = page.get_by_role("group", name="Monday", exact=True)
    tuesday = page.get_by_role("group", name="Tuesday", exact=True)
    wednesday = page.get_by_role("group", name="Wednesday", exact=True)
    await expect(monday).to_contain_text("Not working")
    await monday.get_by_role("button", name="+ Add Monday hours").click()
    await monday.get_by_label("Monday until").fill("12:00")
    await monday.get_by_role("button", name="+ Add Monday hours").click()
    assert await _range_inputs(monday) == [("09:00", "12:00"), ("13:00", "16:00")]
    await monday.get_by_label("Monday until").nth(1).fill("17:00")
    await tuesday.get_by_role("button", name="+ Add Tuesday hours").click()
    await page.get_by_label("Slot length").fill("30")
    # A range that ends before it starts is refused, with the reason.
    await wednesday.get_by_role("button", name="+ Add Wednesday hours").click()
    await wednesday.get_by_label("Wednesday until").fill("08:00")
    await save.click()
    await expect(page.locator("#hours-error")).to_have_text("Wednesday: 08:00 is not after 09:00.")
    await expect(wednesday.get_by_label("Wednesday until")).to_be_focused()
    await wednesday.get_by_role("button", name="Remove these Wednesday hours").click()
    await expect(wednesday).to_contain_text("Not working")
    await save.click()
    await expect(page.locator("#hours-status")).to_have_text(
        "Saved. Students can book the new hours now."
    )
    await page.screenshot(path=artifacts / "availability-hours.png", full_page=True)
    await page.reload()
    await expect(page.get_by_label("Slot length")).to_have_value("30")
    await expect(monday.locator(".hours-range")).to_have_count(2)
    assert await _range_inputs(monday) == [("09:00", "12:00"), ("13:00", "17:00")]
    assert await _range_inputs(tuesday) == [("09:00", "17:00")]
    async with system.runtime.db.unit_of_work() as session:
        week = await schedule.get_weekly_hours(session, counselor.id)
    assert week.slot_minutes == 30
    assert week.days[0] == [HoursRange(time(9), time(12)), HoursRange(time(13), time(17))]

    # --- two students book the next Monday; an absence then collides with both ---------------
    today = datetime.now(tz).date()
    next_monday = today + timedelta(days=7 - today.weekday())
    async with system.runtime.db.unit_of_work() as session:
        closed = await session.get(ClosedDay, next_monday)
    if closed is not None:  # the demo's holiday: the Monday after
        next_monday += timedelta(days=7)
    peters = await _book(system, peter, counselor, _at(next_monday, 9, tz))
    mercys = await _book(system, mercy, counselor, _at(next_monday, 10, tz))

    absence = page.locator("#absence-form")
    await absence.get_by_label("First day").fill(next_monday.isoformat())
    await absence.get_by_label("Last day").fill(next_monday.isoformat())
    await absence.get_by_label("Reason").fill("Training in Nakuru")
    await absence.get_by_role("button", name="Add absence").click()
    conflicts = page.locator("#absence-conflicts .conflicts")
    await expect(conflicts.get_by_role("heading")).to_have_text(
        f"2 booked appointments fall on {_long_day(next_monday)}"
    )
    await expect(conflicts.get_by_role("heading")).to_be_focused()
    items = conflicts.locator(".conflict-item")
    await expect(items).to_have_count(2)
    await expect(items.nth(0)).to_contain_text("Peter Kariuki")
    await expect(items.nth(0)).to_contain_text(f"{_short_day(next_monday)}, 09:00–09:30")
    await expect(items.nth(1)).to_contain_text("Mercy Atieno")
    await expect(page.locator("#absence-list")).to_contain_text("Training in Nakuru")
    await page.screenshot(path=artifacts / "availability-conflicts.png", full_page=True)

    # Peter's moves to the first free time the picker offers (not on the absent Monday).
    peter_item = items.filter(has_text="Peter Kariuki")
    await peter_item.get_by_role("button", name="Reschedule").click()
    picker = peter_item.locator("form.picker")
    await expect(
        picker.locator(f'.day-button[data-day="{next_monday.isoformat()}"]')
    ).to_have_count(0)
    await picker.locator(".slot-button").first.click()
    await picker.get_by_role("button", name=re.compile("^Move to")).click()
    await expect(peter_item.locator(".conflict-outcome")).to_contain_text("Moved to")
    await _eventually(lambda: _told(emulator, PETER, "has moved"))

    # Mercy's is canceled with the message, which is what she reads in Telegram.
    message = "I am away at a training that day. Please book another time; sorry for the change."
    cancel_all = conflicts.get_by_role("button", name="Cancel all with this message")
    await cancel_all.click()
    await expect(conflicts.get_by_role("alert")).to_contain_text("Write the message")
    await conflicts.get_by_label("Message to the students").fill(message)
    await cancel_all.click()
    mercy_item = items.filter(has_text="Mercy Atieno")
    await expect(mercy_item.locator(".conflict-outcome")).to_contain_text("Canceled")
    await expect(mercy_item).to_contain_text("Canceled")
    await expect(conflicts.get_by_role("status")).to_have_text(
        "All settled. Each student has been told on Telegram."
    )
    told = await _eventually(lambda: _told(emulator, MERCY, message))
    assert "Lucy Achieng" in told[0]
    assert (await _status_in_database(system, mercys))[0] == "canceled"
    status, starts_at = await _status_in_database(system, peters)
    assert status == "confirmed" and starts_at.astimezone(tz).date() != next_monday
    await page.screenshot(path=artifacts / "availability-settled.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=artifacts / "availability-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)

    # The calendar shows the absence on its day, and the canceled booking only when asked.
    await page.goto(f"/appointments?view=week&date={next_monday.isoformat()}&counselor=mine")
    monday_column = page.locator(".cal-col").first
    await expect(monday_column.locator(".cal-off")).to_have_text("Away · Training in Nakuru")
    await expect(page.locator(".cal-col-head").first).to_contain_text("Away · Training in Nakuru")
    await expect(page.locator(".appt-block", has_text="Mercy Atieno")).to_have_count(0)
    await expect(page.locator(".appt-block", has_text="Peter Kariuki")).to_be_visible()
    await page.screenshot(path=artifacts / "appointments-week-absence.png")

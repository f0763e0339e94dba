"""Appointments through the real bot and the Telegram emulator, on the real clock: booking with
and without a reason, first available, a slot taken between pick and confirm, the per-student
limit, cancelling, rescheduling, the past list, forged and stale buttons, and the support chat
beside it all. Each test runs without and with Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.keyboards import (
    ActionCallback,
    AppointmentAction,
    DaysCallback,
    DraftAction,
    DraftCallback,
    PickCallback,
    SlotsCallback,
    ViewCallback,
)
from counseldesk.appointments.models import AppointmentStatus, CanceledBy
from counseldesk.config import Settings
from counseldesk.db.engine import Database
from counseldesk.runtime import Runtime
from counseldesk.students.service import get_by_telegram_id
from counseldesk.support.keyboards import SupportAction, SupportCallback
from tests.appointments.factories import place
from tests.conftest import make_settings
from tests.e2e.appointments_helpers import (
    BOOK,
    CANCEL,
    CANCEL_APPOINTMENT,
    CONFIRM,
    FIRST_AVAILABLE,
    MINE,
    PAST,
    RESCHEDULE,
    SKIP,
    YES_CANCEL,
    Published,
    appointments_of,
    book,
    day_labels,
    pick_a_time,
    registered,
    time_labels,
    working_every_day,
)
from tests.e2e.harness import BotHarness, buttons
from tests.factories import make_student

MAX_UPCOMING = 2


@pytest.fixture
def settings() -> Settings:
    """The office's defaults, with a small limit so that reaching it takes two bookings."""
    return make_settings(appointment_max_upcoming=MAX_UPCOMING, appointment_reminders="1440,60")


# --- booking ------------------------------------------------------------------------------------


async def test_booking_with_a_reason(
    harness: BotHarness, session: AsyncSession, db: Database, runtime: Runtime
) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    await working_every_day(session, "Mr. Brian Mwangi")
    jane = await registered(harness, session, 601)
    published = Published(db)

    reply = await jane.say("/menu")
    assert buttons(reply[-1])[:3] == [BOOK, MINE, "💬 Support"]
    reply = await jane.press(BOOK)
    assert "who would you like to see" in reply[0]["text"]
    assert buttons(reply[0]) == [
        FIRST_AVAILABLE,
        "Dr. Achieng Otieno",
        "Mr. Brian Mwangi",
        "⬅️ Main menu",
    ]
    reply = await jane.press("Dr. Achieng Otieno")
    days = day_labels(reply[0])
    assert len(days) == 8 and all(" · " in d for d in days)
    assert buttons(reply[0])[-2:] == ["Later ›", "‹ Back"]
    reply = await jane.press(days[1])
    assert days[1].split(" · ")[0] in reply[0]["text"]
    times = time_labels(reply[0])
    assert times and len(times) == int(days[1].split(" · ")[1].split()[0])
    reply = await jane.press(times[0])
    assert "what it's about" in reply[0]["text"]
    assert buttons(reply[0]) == [SKIP, CANCEL]

    reply = await jane.say("x" * 501)
    assert "longer than 500 characters" in reply[0]["text"]
    reply = await jane.say("Exam <stress> & sleep")
    summary = reply[0]["text"]
    assert "Counselor: Dr. Achieng Otieno" in summary
    assert f", {times[0]}" in summary and "Reason: Exam <stress> & sleep" in summary
    assert buttons(reply[0]) == [CONFIRM, "🔁 Another time", CANCEL]

    reply = await jane.press(CONFIRM)
    done = reply[0]["text"]
    assert "Booked — Dr. Achieng Otieno" in done and "pending the counselor's confirmation" in done
    assert "remind you 1 day and 1 hour before it" in done
    (appointment,) = await appointments_of(session, (await _student_id(session, 601)))
    assert appointment.status is AppointmentStatus.PENDING
    assert appointment.reason == "Exam <stress> & sleep"
    local = appointment.starts_at.astimezone(runtime.settings.tz)
    assert f"{local:%H:%M}" == times[0]
    assert published.appointment_events() == [("appointment.created", "booked", appointment.id)]

    # Pressing Confirm again books nothing more.
    await jane.press_data(DraftCallback(action=DraftAction.CONFIRM, at=0).pack(), force=True)
    assert "earlier step" in (jane.last_callback_answer() or "")
    assert len(await appointments_of(session, appointment.student_id)) == 1
    # Nor does an older screen's Cancel pretend that nothing was booked.
    await jane.press_data(DraftCallback(action=DraftAction.CANCEL).pack(), force=True)
    assert "earlier step" in (jane.last_callback_answer() or "")
    assert "nothing was booked" not in jane.bot_messages()[-1]["text"]
    (still,) = await appointments_of(session, appointment.student_id)
    assert still.status is AppointmentStatus.PENDING


async def test_booking_with_skip_and_first_available(
    harness: BotHarness, session: AsyncSession, db: Database
) -> None:
    first = await working_every_day(session, "Dr. Achieng Otieno")
    second = await working_every_day(session, "Mr. Brian Mwangi")
    amy = await registered(harness, session, 602)
    published = Published(db)

    await pick_a_time(amy, FIRST_AVAILABLE)
    reply = await amy.press(SKIP)
    summary = reply[0]["text"]
    assert "Counselor: First available counselor" in summary and "Reason: —" in summary
    reply = await amy.press(CONFIRM)
    (appointment,) = await appointments_of(session, await _student_id(session, 602))
    assert appointment.counselor_id in {first.id, second.id}
    assert appointment.reason == ""
    name = first.full_name if appointment.counselor_id == first.id else second.full_name
    assert f"Booked — {name}" in reply[0]["text"]
    assert published.appointment_events() == [("appointment.created", "booked", appointment.id)]


async def test_many_counselors_and_days_are_paged(
    harness: BotHarness, session: AsyncSession
) -> None:
    for n in range(1, 9):
        await working_every_day(session, f"Counselor {n}")
    lee = await registered(harness, session, 612)

    await lee.say("/menu")
    reply = await lee.press(BOOK)
    assert buttons(reply[0]) == [FIRST_AVAILABLE] + [f"Counselor {n}" for n in range(1, 7)] + [
        "Next ›",
        "⬅️ Main menu",
    ]
    reply = await lee.press("Next ›")
    assert buttons(reply[0]) == [
        FIRST_AVAILABLE,
        "Counselor 7",
        "Counselor 8",
        "‹ Previous",
        "⬅️ Main menu",
    ]
    reply = await lee.press("Counselor 8")
    first_page = day_labels(reply[0])
    reply = await lee.press("Later ›")
    later = day_labels(reply[0])
    assert later and not set(later) & set(first_page)
    reply = await lee.press("‹ Back")
    assert "who would you like to see" in reply[0]["text"]


async def test_one_student_cannot_be_in_two_places_at_once(
    harness: BotHarness, session: AsyncSession, db: Database
) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    await working_every_day(session, "Mr. Brian Mwangi")
    joy = await registered(harness, session, 613)
    day, time = await pick_a_time(joy, "Dr. Achieng Otieno")
    await joy.press(SKIP)
    await joy.press(CONFIRM)
    published = Published(db)

    await joy.say("/menu")
    await joy.press(BOOK)
    await joy.press("Mr. Brian Mwangi")
    await joy.press(day)
    await joy.press(time)
    await joy.press(SKIP)
    reply = await joy.press(CONFIRM)
    assert "another appointment at that time" in reply[0]["text"]
    assert buttons(reply[0]) == ["📅 Other days", "‹ Back"]
    assert len(await appointments_of(session, await _student_id(session, 613))) == 1
    assert published.appointment_events() == []


async def test_a_slot_taken_meanwhile_offers_the_nearest_free_ones(
    harness: BotHarness, session: AsyncSession, db: Database
) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    jane = await registered(harness, session, 603)
    ben = await registered(harness, session, 604, "Ben Kiprop")

    day, time = await pick_a_time(jane, "Dr. Achieng Otieno")
    await jane.say("Homesick")
    # Between Jane's pick and her confirm, Ben books the very same time.
    await ben.say("/menu")
    await ben.press(BOOK)
    await ben.press("Dr. Achieng Otieno")
    await ben.press(day)
    await ben.press(time)
    await ben.press(SKIP)
    await ben.press(CONFIRM)
    (bens,) = await appointments_of(session, await _student_id(session, 604))
    published = Published(db)

    reply = await jane.press(CONFIRM)
    text = reply[0]["text"]
    assert "was just taken" in text and "nearest free times" in text
    alternatives = buttons(reply[0])[:-2]
    assert alternatives and buttons(reply[0])[-2:] == ["📅 Other days", CANCEL]
    assert await appointments_of(session, await _student_id(session, 603)) == []
    assert published.appointment_events() == []

    reply = await jane.press(alternatives[0])  # back to the confirm, the reason kept
    assert "Reason: Homesick" in reply[0]["text"]
    assert alternatives[0].split(", ")[1] in reply[0]["text"]
    reply = await jane.press(CONFIRM)
    assert "Booked" in reply[0]["text"]
    (janes,) = await appointments_of(session, await _student_id(session, 603))
    assert janes.reason == "Homesick" and janes.starts_at != bens.starts_at
    assert published.appointment_events() == [("appointment.created", "booked", janes.id)]


async def test_the_limit_on_upcoming_bookings_stops_hoarding(
    harness: BotHarness, session: AsyncSession, db: Database
) -> None:
    counselor = await working_every_day(session, "Dr. Achieng Otieno")
    kim = await registered(harness, session, 605)
    kim_id = await _student_id(session, 605)
    await book(kim, "Dr. Achieng Otieno")

    # Kim reaches the confirm of her second; meanwhile a booking is added from the office.
    await pick_a_time(kim, "Dr. Achieng Otieno", day_index=2)
    await kim.press(SKIP)
    await place(
        session,
        student_id=kim_id,
        counselor_id=counselor.id,
        starts_at=_whole_hour(days=20, hour_utc=7),
        status=AppointmentStatus.PENDING,
    )
    await session.commit()
    published = Published(db)
    reply = await kim.press(CONFIRM)
    assert f"You already have {MAX_UPCOMING} upcoming appointments" in reply[0]["text"]
    assert buttons(reply[0]) == [MINE, "⬅️ Main menu"]
    assert len(await appointments_of(session, kim_id)) == MAX_UPCOMING
    assert published.appointment_events() == []

    # From then on Book appointment says so at once.
    await kim.say("/menu")
    reply = await kim.press(BOOK)
    assert "cancel one of them first" in reply[0]["text"]
    forged = DaysCallback(counselor_id=counselor.id).pack()
    reply = await kim.press_data(forged, force=True)  # the days can be reached, booking can't
    reply = await kim.press(day_labels(reply[0])[3])
    await kim.press(time_labels(reply[0])[0])
    await kim.press(SKIP)
    reply = await kim.press(CONFIRM)
    assert f"You already have {MAX_UPCOMING} upcoming appointments" in reply[0]["text"]
    assert len(await appointments_of(session, kim_id)) == MAX_UPCOMING


# --- my appointments ----------------------------------------------------------------------------


async def test_cancelling_keeps_the_appointment_as_canceled(
    harness: BotHarness, session: AsyncSession, db: Database
) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    eve = await registered(harness, session, 606)
    await book(eve, "Dr. Achieng Otieno", reason="Roommate")
    (appointment,) = await appointments_of(session, await _student_id(session, 606))
    published = Published(db)

    await eve.say("/menu")
    reply = await eve.press(MINE)
    assert "upcoming appointments" in reply[0]["text"]
    (label,) = [b for b in buttons(reply[0]) if "Dr. Achieng Otieno" in b]
    assert label.startswith("🕓 ")
    reply = await eve.press(label)
    view = reply[0]["text"]
    assert "Appointment with Dr. Achieng Otieno" in view and "Waiting for the counselor" in view
    assert "Reason: Roommate" in view
    assert buttons(reply[0]) == [RESCHEDULE, CANCEL_APPOINTMENT, "‹ Back to the list"]

    reply = await eve.press(CANCEL_APPOINTMENT)
    assert "Cancel your appointment with Dr. Achieng Otieno" in reply[0]["text"]
    reply = await eve.press("No, keep it")
    assert "Waiting for the counselor" in reply[0]["text"]
    assert (await appointments_of(session, appointment.student_id))[0].status is (
        AppointmentStatus.PENDING
    )

    await eve.press(CANCEL_APPOINTMENT)
    reply = await eve.press(YES_CANCEL)
    assert eve.last_callback_answer() == "Appointment canceled."
    assert "❌ Canceled" in reply[0]["text"] and "You canceled it." in reply[0]["text"]
    assert buttons(reply[0]) == ["‹ Back to the list"]
    (appointment,) = await appointments_of(session, appointment.student_id)
    assert appointment.status is AppointmentStatus.CANCELED
    assert appointment.canceled_by is CanceledBy.STUDENT
    assert published.appointment_events() == [("appointment.updated", "canceled", appointment.id)]

    # Pressing Yes again (an old message) changes nothing.
    await eve.press_data(
        ActionCallback(action=AppointmentAction.CANCEL, appointment_id=appointment.id).pack(),
        force=True,
    )
    assert eve.last_callback_answer() == "This appointment can no longer be changed."
    assert len(published.appointment_events()) == 1

    reply = await eve.press("‹ Back to the list")
    assert "no upcoming appointments" in reply[0]["text"]
    reply = await eve.press(PAST)
    assert any(b.startswith("❌ ") and "Dr. Achieng Otieno" in b for b in buttons(reply[0]))


async def test_rescheduling_moves_to_another_free_slot(
    harness: BotHarness, session: AsyncSession, db: Database, runtime: Runtime
) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    await working_every_day(session, "Mr. Brian Mwangi")
    tom = await registered(harness, session, 607, "Tom Otieno")
    await book(tom, "Dr. Achieng Otieno", reason="Fees")
    (before,) = await appointments_of(session, await _student_id(session, 607))
    old_start = before.starts_at
    published = Published(db)

    await tom.say("/menu")
    reply = await tom.press(MINE)
    await tom.press(buttons(reply[0])[0])
    reply = await tom.press(RESCHEDULE)
    assert "Move your appointment" in reply[0]["text"] and "Dr. Achieng Otieno" in reply[0]["text"]
    days = day_labels(reply[0])
    reply = await tom.press(days[2])
    new_time = time_labels(reply[0])[-1]
    reply = await tom.press(new_time)
    summary = reply[0]["text"]  # no reason asked again: straight to the confirm
    assert "Move your appointment?" in summary and "From:" in summary and new_time in summary
    reply = await tom.press(CONFIRM)
    assert "Moved — Dr. Achieng Otieno" in reply[0]["text"]

    (after,) = await appointments_of(session, before.student_id)
    assert after.id == before.id and after.starts_at != old_start
    assert f"{after.starts_at.astimezone(runtime.settings.tz):%H:%M}" == new_time
    assert after.counselor_id == before.counselor_id and after.reason == "Fees"
    assert after.status is AppointmentStatus.PENDING and after.reschedule_count == 1
    assert published.appointment_events() == [("appointment.updated", "rescheduled", after.id)]

    # Cancelling a move half-way leaves the appointment as it is.
    await tom.say("/menu")
    reply = await tom.press(MINE)
    await tom.press(buttons(reply[0])[0])
    reply = await tom.press(RESCHEDULE)
    reply = await tom.press(day_labels(reply[0])[0])
    await tom.press(time_labels(reply[0])[0])
    reply = await tom.press(CANCEL)
    assert "stays as it was" in reply[0]["text"]
    (still,) = await appointments_of(session, before.student_id)
    assert still.starts_at == after.starts_at


async def test_past_appointments_show_their_status(
    harness: BotHarness, session: AsyncSession
) -> None:
    counselor = await working_every_day(session, "Dr. Achieng Otieno")
    sue = await registered(harness, session, 608)
    sue_id = await _student_id(session, 608)
    for days_ago, status in (
        (3, AppointmentStatus.COMPLETED),
        (2, AppointmentStatus.NO_SHOW),
        (1, AppointmentStatus.CANCELED),
    ):
        await place(
            session,
            student_id=sue_id,
            counselor_id=counselor.id,
            starts_at=_whole_hour(days=-days_ago, hour_utc=8),
            status=status,
        )
    await session.commit()

    await sue.say("/menu")
    reply = await sue.press(MINE)
    assert "no upcoming appointments" in reply[0]["text"]
    reply = await sue.press(PAST)
    assert "past appointments" in reply[0]["text"]
    labels = [b for b in buttons(reply[0]) if "Dr. Achieng Otieno" in b]
    assert [label[:2].strip() for label in labels] == ["❌", "🚫", "✔️"]  # latest first
    reply = await sue.press(labels[2])
    assert "✔️ Completed" in reply[0]["text"]
    assert buttons(reply[0]) == ["‹ Back to the list"]  # nothing to change in the past
    reply = await sue.press("‹ Back to the list")
    assert "past appointments" in reply[0]["text"]
    reply = await sue.press(labels[1])
    assert "🚫 Missed" in reply[0]["text"]


# --- forged and stale buttons, strangers, the support chat beside it ----------------------------


async def test_forged_and_stale_buttons_change_nothing(
    harness: BotHarness, session: AsyncSession, db: Database
) -> None:
    counselor = await working_every_day(session, "Dr. Achieng Otieno")
    owner = await make_student(session, telegram_user_id=609)
    theirs = await place(
        session,
        student_id=owner.id,
        counselor_id=counselor.id,
        starts_at=_whole_hour(days=5, hour_utc=7),
        status=AppointmentStatus.PENDING,
    )
    await session.commit()
    mallory = await registered(harness, session, 610, "Mallory Smith")
    published = Published(db)
    await mallory.say("/menu")

    for forged in (
        ViewCallback(appointment_id=theirs.id).pack(),
        ActionCallback(action=AppointmentAction.CANCEL, appointment_id=theirs.id).pack(),
        DaysCallback(counselor_id=0, move=theirs.id).pack(),
        PickCallback(
            counselor_id=counselor.id, at=int(theirs.starts_at.timestamp()) + 86400, move=theirs.id
        ).pack(),
    ):
        reply = await mallory.press_data(forged, force=True)
        assert reply == []
        assert mallory.last_callback_answer() == "That appointment isn't available."

    # A time that has passed, one that is no slot at all, data no button of ours packs.
    past = int((datetime.now(UTC) - timedelta(hours=2)).timestamp())
    reply = await mallory.press_data(
        PickCallback(counselor_id=counselor.id, at=past).pack(), force=True
    )
    assert "can no longer be booked" in reply[0]["text"]
    odd = int(_whole_hour(days=3, hour_utc=7).timestamp()) + 17 * 60
    reply = await mallory.press_data(
        PickCallback(counselor_id=counselor.id, at=odd).pack(), force=True
    )
    assert "was just taken" in reply[0]["text"]
    for garbage in ("apk:1:not-a-time", "apv:x", f"aps:{counselor.id}:99999999999"):
        await mallory.press_data(garbage, force=True)
        assert "earlier step" in (mallory.last_callback_answer() or "")
    await mallory.press_data(DraftCallback(action=DraftAction.SKIP).pack(), force=True)
    assert "earlier step" in (mallory.last_callback_answer() or "")
    await mallory.press_data(DaysCallback(counselor_id=2_000_000_000).pack(), force=True)
    assert "earlier step" in (mallory.last_callback_answer() or "")

    (unchanged,) = await appointments_of(session, owner.id)
    assert unchanged.status is AppointmentStatus.PENDING
    assert unchanged.starts_at == theirs.starts_at
    assert await appointments_of(session, await _student_id(session, 610)) == []
    assert published.appointment_events() == []


async def test_unregistered_users_cannot_book(harness: BotHarness, session: AsyncSession) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    stranger = harness.student(first_name="Stranger")
    await stranger.say("/menu")
    for data in ("menu:book", "menu:appts", DaysCallback(counselor_id=0).pack()):
        reply = await stranger.press_data(data, force=True)
        assert reply == []
        assert "register first" in (stranger.last_callback_answer() or "")


async def test_the_support_chat_keeps_working_beside_a_booking(
    harness: BotHarness, session: AsyncSession
) -> None:
    await working_every_day(session, "Dr. Achieng Otieno")
    ann = await registered(harness, session, 611)

    # Half-way through the buttons, typed text is not ours: it goes to the support chat.
    await ann.say("/menu")
    await ann.press(BOOK)
    await ann.press("Dr. Achieng Otieno")
    reply = await ann.say("hello")
    assert "hasn't been passed on" in reply[0]["text"]

    # At the reason step, pressing a support button leaves the booking: the next text is not
    # taken as a reason.
    await pick_a_time(ann, "Dr. Achieng Otieno")
    reply = await ann.press_data(SupportCallback(action=SupportAction.LIST).pack(), force=True)
    assert "Your conversations" in reply[0]["text"]
    reply = await ann.say("not a reason")
    assert "hasn't been passed on" in reply[0]["text"]

    # /cancel at the reason step drops the booking only.
    await pick_a_time(ann, "Dr. Achieng Otieno")
    reply = await ann.say("/cancel")
    assert "nothing was booked" in reply[0]["text"]
    reply = await ann.say("still here")
    assert "hasn't been passed on" in reply[0]["text"]
    assert await appointments_of(session, await _student_id(session, 611)) == []

    # Opening our screens half-way through a new support conversation drops that draft.
    await ann.say("/menu")
    await ann.press("💬 Support")
    await ann.press("✍️ New conversation")
    await ann.press_data("menu:book", force=True)
    reply = await ann.say("Not a subject")
    assert "hasn't been passed on" in reply[0]["text"]


def test_callback_data_stays_within_telegrams_limit() -> None:
    big, epoch = 2**63 - 1, 9_999_999_999
    longest = [
        PickCallback(counselor_id=2**31 - 1, at=epoch, move=big, again=1).pack(),
        SlotsCallback(
            counselor_id=2**31 - 1, day=3_652_059, start=3_652_059, move=big, offset=99
        ).pack(),
        ActionCallback(action=AppointmentAction.ASK_CANCEL, appointment_id=big, page=9999).pack(),
        ViewCallback(appointment_id=big, past=1, page=9999).pack(),
        DraftCallback(action=DraftAction.CONFIRM, at=epoch).pack(),
    ]
    assert all(len(data.encode()) <= 64 for data in longest)


# --- helpers ------------------------------------------------------------------------------------


async def _student_id(session: AsyncSession, telegram_user_id: int) -> int:
    student = await get_by_telegram_id(session, telegram_user_id)
    assert student is not None
    return student.id


def _whole_hour(*, days: int, hour_utc: int) -> datetime:
    """A whole hour `days` from today (UTC), for arranging appointments directly."""
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return today.replace(hour=hour_utc) + timedelta(days=days)

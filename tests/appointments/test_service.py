"""Booking, changes and reminders against the real schema, on a fixed clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import schedule, service
from counseldesk.appointments.models import AppointmentStatus, CanceledBy
from counseldesk.appointments.reminders import REMINDER_KIND, reminder_key
from counseldesk.appointments.slots import BookingWindow, free_days, free_slots_on
from counseldesk.errors import Conflict, InvalidInput, NotFound
from counseldesk.realtime.events import take_events
from counseldesk.telegram.models import Notification, NotificationStatus
from tests.appointments.factories import NOW, appointment_settings, give_hours, local, place
from tests.factories import make_counselor, make_student

SETTINGS = appointment_settings()


async def _reminders(session: AsyncSession, appointment_id: int) -> list[Notification]:
    rows = await session.scalars(
        select(Notification)
        .where(Notification.ref_key == reminder_key(appointment_id))
        .order_by(Notification.scheduled_for)
    )
    return list(rows.all())


async def test_free_slots_follow_hours_notice_and_bookings(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    window = BookingWindow.of(SETTINGS, NOW)
    # Monday 4 March, 07:00 local now; 09-12 and 13-17 hours; 10:00 taken.
    await place(
        session,
        student_id=student.id,
        counselor_id=counselor.id,
        starts_at=local(SETTINGS, 2030, 3, 4, 10),
    )
    slots = await free_slots_on(session, window, NOW.date(), counselor_id=counselor.id)
    hours = [s.starts_at.astimezone(SETTINGS.tz).hour for s in slots]
    assert hours == [9, 11, 13, 14, 15, 16]
    assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in slots)
    # Saturday: no hours.
    assert await free_slots_on(session, window, NOW.date() + timedelta(days=5)) == []


async def test_absences_and_closed_days_remove_whole_days(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    window = BookingWindow.of(SETTINGS, NOW)
    monday = NOW.date()
    await schedule.add_absence(
        session,
        counselor_id=counselor.id,
        starts_on=monday + timedelta(days=1),
        ends_on=monday + timedelta(days=2),
        reason="Training",
        created_by_id=None,
    )
    await schedule.add_closed_day(session, monday + timedelta(days=3), "Public holiday")
    days, next_start = await free_days(session, window, counselor_id=counselor.id, limit=3)
    assert [d.day for d in days] == [monday, monday + timedelta(days=4), monday + timedelta(days=7)]
    assert next_start == monday + timedelta(days=8)


async def test_booking_takes_a_free_slot_and_queues_reminders(session: AsyncSession) -> None:
    counselor = await make_counselor(session, full_name="Dr. Achieng")
    await give_hours(session, counselor)
    student = await make_student(session)
    starts_at = local(SETTINGS, 2030, 3, 6, 10)  # Wednesday 10:00
    appointment = await service.do_book(
        session,
        SETTINGS,
        student,
        counselor_id=counselor.id,
        starts_at=starts_at,
        reason="Exam stress",
        now=NOW,
    )
    assert appointment.status is AppointmentStatus.PENDING
    assert (appointment.starts_at, appointment.ends_at) == (
        starts_at,
        starts_at + timedelta(hours=1),
    )
    reminders = await _reminders(session, appointment.id)
    assert [r.scheduled_for for r in reminders] == [
        starts_at - timedelta(days=1),
        starts_at - timedelta(hours=1),
    ]
    assert all(r.expires_at == starts_at and r.kind == REMINDER_KIND for r in reminders)
    assert "Dr. Achieng" in reminders[0].payload["text"]
    assert "Wed 6 Mar 2030, 10:00" in reminders[0].payload["text"]
    events = take_events(session)
    assert [e.type for e in events] == ["appointment.created"]
    assert events[0].data["appointment"]["student_name"] == student.full_name


async def test_a_reminder_already_past_is_not_queued(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    starts_at = local(SETTINGS, 2030, 3, 4, 13)  # today, 6 hours from now
    appointment = await service.do_book(
        session, SETTINGS, student, counselor_id=counselor.id, starts_at=starts_at, now=NOW
    )
    reminders = await _reminders(session, appointment.id)
    assert [r.scheduled_for for r in reminders] == [starts_at - timedelta(hours=1)]


async def test_a_taken_slot_offers_the_nearest_free_ones(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    first, second = await make_student(session), await make_student(session)
    starts_at = local(SETTINGS, 2030, 3, 6, 10)
    await service.do_book(
        session, SETTINGS, first, counselor_id=counselor.id, starts_at=starts_at, now=NOW
    )
    with pytest.raises(service.SlotTaken) as caught:
        await service.do_book(
            session, SETTINGS, second, counselor_id=counselor.id, starts_at=starts_at, now=NOW
        )
    hours = [s.starts_at.astimezone(SETTINGS.tz).hour for s in caught.value.alternatives]
    assert hours == [9, 11, 13]


async def test_first_available_picks_a_free_counselor(session: AsyncSession) -> None:
    busy, free = await make_counselor(session), await make_counselor(session)
    for counselor in (busy, free):
        await give_hours(session, counselor)
    starts_at = local(SETTINGS, 2030, 3, 6, 10)
    other = await make_student(session)
    await place(session, student_id=other.id, counselor_id=busy.id, starts_at=starts_at)
    student = await make_student(session)
    appointment = await service.do_book(
        session, SETTINGS, student, counselor_id=None, starts_at=starts_at, now=NOW
    )
    assert appointment.counselor_id == free.id


async def test_not_a_slot_times_are_refused(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    for starts_at in (
        local(SETTINGS, 2030, 3, 6, 10, 30),  # off the grid
        local(SETTINGS, 2030, 3, 6, 12),  # lunch
        local(SETTINGS, 2030, 3, 4, 7),  # inside the notice
        local(SETTINGS, 2030, 3, 9, 10),  # Saturday
        local(SETTINGS, 2030, 5, 6, 10),  # beyond the booking window
    ):
        with pytest.raises(service.SlotTaken):
            await service.do_book(
                session, SETTINGS, student, counselor_id=counselor.id, starts_at=starts_at, now=NOW
            )
    with pytest.raises(InvalidInput):
        await service.do_book(
            session,
            SETTINGS,
            student,
            counselor_id=counselor.id,
            starts_at=local(SETTINGS, 2030, 3, 6, 10).replace(tzinfo=None),
            now=NOW,
        )


async def test_the_upcoming_limit_stops_hoarding(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    for hour in (9, 10, 11):
        await service.do_book(
            session,
            SETTINGS,
            student,
            counselor_id=counselor.id,
            starts_at=local(SETTINGS, 2030, 3, 6, hour),
            now=NOW,
        )
    with pytest.raises(Conflict, match="3 upcoming"):
        await service.do_book(
            session,
            SETTINGS,
            student,
            counselor_id=counselor.id,
            starts_at=local(SETTINGS, 2030, 3, 6, 13),
            now=NOW,
        )


async def test_a_student_cannot_be_in_two_places_at_once(session: AsyncSession) -> None:
    first, second = await make_counselor(session), await make_counselor(session)
    for counselor in (first, second):
        await give_hours(session, counselor)
    student = await make_student(session)
    starts_at = local(SETTINGS, 2030, 3, 6, 10)
    await service.do_book(
        session, SETTINGS, student, counselor_id=first.id, starts_at=starts_at, now=NOW
    )
    with pytest.raises(Conflict, match="another appointment at that time"):
        await service.do_book(
            session, SETTINGS, student, counselor_id=second.id, starts_at=starts_at, now=NOW
        )


async def test_student_cancel_keeps_the_row_frees_the_slot_and_drops_reminders(
    session: AsyncSession,
) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    starts_at = local(SETTINGS, 2030, 3, 6, 10)
    appointment = await service.do_book(
        session, SETTINGS, student, counselor_id=counselor.id, starts_at=starts_at, now=NOW
    )
    await service.do_cancel_by_student(session, SETTINGS, student, appointment.id, now=NOW)
    assert appointment.status is AppointmentStatus.CANCELED
    assert appointment.canceled_by is CanceledBy.STUDENT
    reminders = await _reminders(session, appointment.id)
    assert {r.status for r in reminders} == {NotificationStatus.CANCELLED}
    other = await make_student(session)
    again = await service.do_book(
        session, SETTINGS, other, counselor_id=counselor.id, starts_at=starts_at, now=NOW
    )
    assert again.id != appointment.id
    with pytest.raises(NotFound):
        await service.do_cancel_by_student(session, SETTINGS, student, again.id, now=NOW)


async def test_reschedule_moves_reminders_and_tells_the_student(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    appointment = await service.do_book(
        session,
        SETTINGS,
        student,
        counselor_id=counselor.id,
        starts_at=local(SETTINGS, 2030, 3, 6, 10),
        now=NOW,
    )
    new_start = local(SETTINGS, 2030, 3, 7, 14)
    await service.do_reschedule_by_counselor(
        session, SETTINGS, appointment.id, starts_at=new_start, now=NOW
    )
    assert appointment.starts_at == new_start
    assert appointment.status is AppointmentStatus.CONFIRMED
    reminders = await _reminders(session, appointment.id)
    pending = [r.scheduled_for for r in reminders if r.status is NotificationStatus.PENDING]
    assert pending == [new_start - timedelta(days=1), new_start - timedelta(hours=1)]
    notices = (
        await session.scalars(
            select(Notification).where(
                Notification.telegram_user_id == student.telegram_user_id,
                Notification.kind == service.NOTICE_KIND,
            )
        )
    ).all()
    assert len(notices) == 1
    assert "Wed 6 Mar 2030, 10:00" in notices[0].payload["text"]
    assert "Thu 7 Mar 2030, 14:00" in notices[0].payload["text"]


async def test_counselor_actions_follow_the_status_rules(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor)
    student = await make_student(session)
    appointment = await service.do_book(
        session,
        SETTINGS,
        student,
        counselor_id=counselor.id,
        starts_at=local(SETTINGS, 2030, 3, 6, 10),
        now=NOW,
    )
    with pytest.raises(Conflict, match="once it has started"):
        await service.do_mark_attendance(session, SETTINGS, appointment.id, attended=True, now=NOW)
    await service.do_confirm(session, SETTINGS, appointment.id, now=NOW)
    with pytest.raises(Conflict, match="Only a pending"):
        await service.do_confirm(session, SETTINGS, appointment.id, now=NOW)
    later = local(SETTINGS, 2030, 3, 6, 10, 30)
    await service.do_mark_attendance(session, SETTINGS, appointment.id, attended=False, now=later)
    assert appointment.status is AppointmentStatus.NO_SHOW
    with pytest.raises(Conflict):
        await service.do_cancel_by_counselor(
            session, SETTINGS, appointment.id, reason="x" * 5, now=later
        )
    with pytest.raises(InvalidInput):
        await service.do_cancel_by_counselor(
            session, SETTINGS, appointment.id, reason=" ", now=later
        )


async def test_a_taken_reschedule_never_offers_the_current_time(session: AsyncSession) -> None:
    counselor = await make_counselor(session)
    await give_hours(session, counselor, ranges=((9, 12),))
    student, other = await make_student(session), await make_student(session)
    appointment = await service.do_book(
        session,
        SETTINGS,
        student,
        counselor_id=counselor.id,
        starts_at=local(SETTINGS, 2030, 3, 6, 10),
        now=NOW,
    )
    taken = local(SETTINGS, 2030, 3, 6, 11)
    await place(session, student_id=other.id, counselor_id=counselor.id, starts_at=taken)
    with pytest.raises(service.SlotTaken) as caught:
        await service.do_reschedule_by_student(
            session, SETTINGS, student, appointment.id, starts_at=taken, now=NOW
        )
    offered = [s.starts_at for s in caught.value.alternatives]
    assert appointment.starts_at not in offered
    assert offered[0] == local(SETTINGS, 2030, 3, 6, 9)
    assert len(offered) == 3

"""Appointment reminders: outbox rows due before the appointment, filed under one key.

Every change of an appointment's time or state calls `do_reschedule_reminders`: the pending
reminders are cancelled and, if the appointment is still active, new ones are queued for its
current time. A reminder carries the appointment's start as its expiry, so one a worker reaches
only after the appointment started is cancelled instead of sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments.formatting import format_lead, format_when
from counseldesk.appointments.models import ACTIVE_STATUSES, Appointment
from counseldesk.i18n import t
from counseldesk.telegram.outbox import do_cancel, do_enqueue

REMINDER_KIND = "appointment_reminder"


def reminder_key(appointment_id: int) -> str:
    return f"appointment:{appointment_id}:reminder"


async def do_reschedule_reminders(
    session: AsyncSession,
    appointment: Appointment,
    *,
    telegram_user_id: int,
    lang: str | None,
    counselor_name: str,
    offsets: tuple[int, ...],
    tz: ZoneInfo,
    now: datetime,
) -> int:
    """Cancel the appointment's pending reminders and queue the ones its current time calls for
    (those still in the future). Returns how many were queued."""
    key = reminder_key(appointment.id)
    await do_cancel(session, key)
    if appointment.status not in ACTIVE_STATUSES:
        return 0
    queued = 0
    for minutes in offsets:
        due = appointment.starts_at - timedelta(minutes=minutes)
        if due <= now:
            continue  # booked later than this reminder would have gone out
        await do_enqueue(
            session,
            kind=REMINDER_KIND,
            telegram_user_id=telegram_user_id,
            text=t(
                "appointments.reminder",
                lang,
                lead=format_lead(minutes),
                counselor=counselor_name,
                when=format_when(appointment.starts_at, tz),
            ),
            scheduled_for=due,
            expires_at=appointment.starts_at,
            ref_key=key,
            ref={"appointment_id": appointment.id, "minutes_before": minutes},
        )
        queued += 1
    return queued

"""How appointments read in the bot: button labels, the confirm screen, one appointment.

Pure functions over already-loaded data. Every text comes from the catalog, which escapes what
it fills in; times are shown in the office's zone. The longest screen (a 500-character reason
and a 120-character name) stays far below Telegram's 4096 characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from counseldesk.appointments.formatting import format_day, format_lead, format_time, format_when
from counseldesk.appointments.models import Appointment, AppointmentStatus, CanceledBy
from counseldesk.appointments.slots import FreeDay, FreeSlot
from counseldesk.i18n import t


def when_short(instant: datetime, tz: ZoneInfo, lang: str | None) -> str:
    """'Tue 3 Dec, 10:00': a button's worth of date and time."""
    return t(
        "appointments.bot.when_short",
        lang,
        day=format_day(instant.astimezone(tz).date()),
        time=format_time(instant, tz),
    )


def day_buttons(days: Sequence[FreeDay], lang: str | None) -> list[tuple[int, str]]:
    return [
        (
            d.day.toordinal(),
            t("appointments.bot.days.day_button", lang, day=format_day(d.day), free=d.free),
        )
        for d in days
    ]


def slot_buttons(slots: Sequence[FreeSlot], tz: ZoneInfo) -> list[tuple[int, str]]:
    return [(int(s.starts_at.timestamp()), format_time(s.starts_at, tz)) for s in slots]


def alternative_buttons(
    slots: Sequence[FreeSlot], tz: ZoneInfo, lang: str | None
) -> list[tuple[int, str]]:
    return [(int(s.starts_at.timestamp()), when_short(s.starts_at, tz, lang)) for s in slots]


def who(counselor_name: str | None, lang: str | None) -> str:
    """The counselor as the booking screens name them ("first available" when not chosen)."""
    return counselor_name or t("appointments.bot.days.first_available_who", lang)


def confirm(
    *, counselor: str, starts_at: datetime, reason: str, tz: ZoneInfo, lang: str | None
) -> str:
    return t(
        "appointments.bot.confirm.title",
        lang,
        who=counselor,
        when=format_when(starts_at, tz),
        reason=reason or t("appointments.bot.confirm.no_reason", lang),
    )


def confirm_move(
    *, counselor: str, old: datetime, starts_at: datetime, tz: ZoneInfo, lang: str | None
) -> str:
    return t(
        "appointments.bot.confirm.title_move",
        lang,
        who=counselor,
        old=format_when(old, tz),
        when=format_when(starts_at, tz),
    )


def reminders(offsets: Sequence[int], lang: str | None) -> str:
    """'⏰ I'll remind you 1 day and 1 hour before it.' (nothing when reminders are off)."""
    if not offsets:
        return ""
    parts = [format_lead(minutes) for minutes in offsets]
    # "1 day and 1 hour", "2 days, 1 day and 1 hour"
    leads = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return "\n" + t("appointments.bot.confirm.reminders", lang, leads=leads)


def status(value: AppointmentStatus, lang: str | None) -> str:
    return t(f"appointments.bot.status.{value.value}", lang)


def list_label(appointment: Appointment, counselor: str, tz: ZoneInfo, lang: str | None) -> str:
    return t(
        "appointments.bot.mine.item",
        lang,
        icon=t(f"appointments.bot.icon.{appointment.status.value}", lang),
        when=when_short(appointment.starts_at, tz, lang),
        counselor=counselor,
    )


def appointment(appointment: Appointment, counselor: str, tz: ZoneInfo, lang: str | None) -> str:
    text = t(
        "appointments.bot.view.text",
        lang,
        counselor=counselor,
        when=format_when(appointment.starts_at, tz),
        status=status(appointment.status, lang),
        reason=appointment.reason or t("appointments.bot.confirm.no_reason", lang),
    )
    if appointment.status is AppointmentStatus.CANCELED:
        if appointment.canceled_by is CanceledBy.STUDENT:
            text += "\n" + t("appointments.bot.view.canceled_by_student", lang)
        elif appointment.canceled_by is CanceledBy.COUNSELOR:
            text += "\n" + t(
                "appointments.bot.view.canceled_by_counselor",
                lang,
                reason=appointment.cancel_reason or "—",
            )
    return text

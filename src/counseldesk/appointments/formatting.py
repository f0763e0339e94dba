"""How appointment times read to a student: in the office's zone, day names spelled out."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def format_when(instant: datetime, tz: ZoneInfo) -> str:
    """'Tue 1 Dec 2026, 10:00' in the office's local time."""
    local = instant.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def format_day(day: date) -> str:
    """'Tue 1 Dec'."""
    return f"{day:%a} {day.day} {day:%b}"


def format_time(instant: datetime, tz: ZoneInfo) -> str:
    return f"{instant.astimezone(tz):%H:%M}"


def format_lead(minutes: int) -> str:
    """How long before: '1 day', '2 hours', '30 minutes', '1 day 6 hours'."""
    days, rest = divmod(minutes, 60 * 24)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{value} {unit}{'' if value == 1 else 's'}"
        for value, unit in ((days, "day"), (hours, "hour"), (mins, "minute"))
        if value
    ]
    return " ".join(parts)

"""The dashboard's home page: a greeting and a few numbers about the office."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.appointments import repository as appointments_repository
from counseldesk.appointments import service as appointments_service
from counseldesk.appointments.availability import day_bounds
from counseldesk.appointments.models import AppointmentStatus
from counseldesk.appointments.repository import AppointmentView
from counseldesk.content.service import get_office_settings
from counseldesk.staff import service as staff_service
from counseldesk.staff.deps import PageCounselor
from counseldesk.students import service as students_service
from counseldesk.web.deps import SessionDep, SettingsDep
from counseldesk.web.templating import render

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {
    AppointmentStatus.PENDING: "Pending",
    AppointmentStatus.CONFIRMED: "Confirmed",
    AppointmentStatus.COMPLETED: "Completed",
    AppointmentStatus.NO_SHOW: "No-show",
    AppointmentStatus.CANCELED: "Canceled",
}


@dataclass(frozen=True)
class HomeStats:
    students: int
    students_estimated: bool
    students_this_week: int
    telegram_users_last_24h: int
    active_counselors: int
    week_start: datetime


def start_of_week(now: datetime, tz: ZoneInfo) -> datetime:
    """Monday 00:00 of the office's current week, as an aware datetime in the office zone."""
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=tz)


async def load_home_stats(session: AsyncSession, tz: ZoneInfo) -> HomeStats:
    now = datetime.now(UTC)
    week_start = start_of_week(now, tz)
    counts = await students_service.count_students(
        session, registered_since=week_start, active_since=now - timedelta(hours=24)
    )
    return HomeStats(
        students=counts.registered,
        students_estimated=counts.registered_is_estimate,
        students_this_week=counts.registered_since,
        telegram_users_last_24h=counts.active_on_telegram,
        active_counselors=await staff_service.count_active_counselors(session),
        week_start=week_start,
    )


@dataclass(frozen=True)
class YourDay:
    """The counselor's own appointments today and those waiting for their confirmation."""

    today: list[AppointmentView]
    awaiting_confirmation: int


async def load_your_day(
    session: AsyncSession, counselor_id: int, now: datetime, tz: ZoneInfo
) -> YourDay:
    starts_from, starts_before = day_bounds(now.astimezone(tz).date(), tz)
    today = await appointments_repository.appointments_between(
        session, tz, starts_from=starts_from, starts_before=starts_before, counselor_id=counselor_id
    )
    return YourDay(
        today=[a for a in today if a.status is not AppointmentStatus.CANCELED],
        awaiting_confirmation=await appointments_service.count_awaiting_confirmation(
            session, counselor_id, now
        ),
    )


TITLES = frozenset({"dr", "mr", "mrs", "ms", "miss", "prof", "rev", "sr", "fr"})


def first_name(full_name: str) -> str:
    """'Dr. Amina Otieno' -> 'Amina': the greeting is personal, not formal."""
    words = full_name.split()
    for word in words:
        if word.rstrip(".").lower() not in TITLES:
            return word
    return words[0] if words else ""


def greeting(now: datetime, tz: ZoneInfo) -> str:
    hour = now.astimezone(tz).hour
    if hour < 12:
        return "Good morning"
    if hour < 17:
        return "Good afternoon"
    return "Good evening"


@router.get("/")
async def home_page(
    request: Request, counselor: PageCounselor, session: SessionDep, settings: SettingsDep
) -> Response:
    now = datetime.now(UTC)
    return render(
        request,
        "home.html",
        {
            "stats": await load_home_stats(session, settings.tz),
            "your_day": await load_your_day(session, counselor.id, now, settings.tz),
            "status_labels": STATUS_LABELS,
            "greeting": greeting(now, settings.tz),
            "first_name": first_name(counselor.full_name),
            "today": now.astimezone(settings.tz),
            "office_name": (await get_office_settings(session)).office_name,
        },
    )

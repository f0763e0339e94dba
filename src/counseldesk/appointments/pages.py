"""Dashboard pages of appointments: the calendar and list (/appointments) and the availability
editor (/appointments/availability).

The routes render shells; static/appointments.js and static/appointments_availability.js load
the data from the JSON API (appointments/api.py) and follow the live event stream. What a
counselor may change is decided by the API; these routes only refuse what would make no sense
to show (a counselor opening another's availability editor) before the script asks for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from counseldesk.appointments.models import (
    MAX_SLOT_MINUTES,
    MIN_SLOT_MINUTES,
    AppointmentStatus,
)
from counseldesk.errors import PermissionDenied
from counseldesk.staff import service as staff_service
from counseldesk.staff.deps import PageCounselor
from counseldesk.web.deps import SessionDep, SettingsDep
from counseldesk.web.templating import render

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {
    AppointmentStatus.PENDING: "Pending",
    AppointmentStatus.CONFIRMED: "Confirmed",
    AppointmentStatus.CANCELED: "Canceled",
    AppointmentStatus.COMPLETED: "Completed",
    AppointmentStatus.NO_SHOW: "No-show",
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The lengths the editor offers; the API accepts any from MIN_SLOT_MINUTES to MAX_SLOT_MINUTES.
SLOT_LENGTHS = (15, 20, 30, 45, 60, 90, 120)
OTHERS_AVAILABILITY = "Only an administrator may edit another counselor's availability."


def _today(tz: ZoneInfo) -> str:
    """The office's date now: where the calendar opens (the browser's own clock may differ)."""
    return datetime.now(UTC).astimezone(tz).date().isoformat()


@router.get("/appointments")
async def appointments_page(
    request: Request, counselor: PageCounselor, session: SessionDep, settings: SettingsDep
) -> Response:
    counselors = [c for c in await staff_service.list_counselors(session) if c.is_active]
    return render(
        request,
        "appointments.html",
        {
            "statuses": STATUS_LABELS,
            "counselors": counselors,
            "timezone": settings.office_timezone,
            "today": _today(settings.tz),
        },
    )


@router.get("/appointments/availability")
async def availability_page(
    request: Request,
    counselor: PageCounselor,
    session: SessionDep,
    settings: SettingsDep,
    counselor_id: int | None = None,
) -> Response:
    editing = counselor
    if counselor_id is not None and counselor_id != counselor.id:
        if not counselor.is_admin:
            raise PermissionDenied(OTHERS_AVAILABILITY)
        editing = await staff_service.get_counselor(session, counselor_id)  # unknown: 404 page
    counselors = (
        [c for c in await staff_service.list_counselors(session) if c.is_active]
        if counselor.is_admin
        else []
    )
    return render(
        request,
        "appointments_availability.html",
        {
            "editing": editing,
            "counselors": counselors,
            "weekdays": WEEKDAYS,
            "slot_lengths": SLOT_LENGTHS,
            "min_slot": MIN_SLOT_MINUTES,
            "max_slot": MAX_SLOT_MINUTES,
            "timezone": settings.office_timezone,
            "today": _today(settings.tz),
        },
    )

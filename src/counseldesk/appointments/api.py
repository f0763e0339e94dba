"""Appointments JSON API under /api/dashboard/appointments: the list, the calendar, free slots,
a counselor's actions on an appointment, weekly hours, absences and closed days.

Any logged-in counselor reads and acts on any appointment (the office shares its calendar).
Weekly hours and absences: one's own, or anyone's for an administrator. Closed days: only
administrators change them. Every change goes through service.py or schedule.py; the request's
unit of work commits.

Fixed paths are declared before `/{appointment_id}` so that it does not capture them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from counseldesk.appointments import repository, schedule, service
from counseldesk.appointments.availability import day_bounds
from counseldesk.appointments.schemas import (
    AbsenceCreated,
    AbsenceIn,
    AbsenceList,
    AbsenceOut,
    AbsencesQuery,
    AppointmentOut,
    AppointmentPage,
    AppointmentsQuery,
    AvailabilityIn,
    AvailabilityOut,
    CalendarOut,
    CalendarQuery,
    CanceledOut,
    ClosedDayCreated,
    ClosedDayIn,
    ClosedDayList,
    ClosedDayOut,
    ClosedDaysQuery,
    FreeDayOut,
    FreeDaysOut,
    FreeDaysQuery,
    FreeSlotOut,
    ReasonIn,
    RescheduleIn,
    SlotsOut,
    SlotsQuery,
    SlotTakenOut,
)
from counseldesk.appointments.slots import BookingWindow, free_days, free_slots_on
from counseldesk.config import Settings
from counseldesk.errors import InvalidInput, NotFound, PermissionDenied
from counseldesk.staff.api import CSRF_REFUSED, NOT_LOGGED_IN
from counseldesk.staff.deps import CurrentAdmin, CurrentCounselor, CurrentStaff
from counseldesk.staff.models import Counselor
from counseldesk.web.deps import SessionDep, SettingsDep
from counseldesk.web.openapi import error_response
from counseldesk.web.query import FromQuery, QueryModelRoute

NOT_YOURS = "You may change only your own hours and absences; an administrator may change anyone's."


class _SlotTakenRoute(QueryModelRoute):
    """Answers SlotTaken with 409 and the nearest free slots (`alternatives`), which the app's
    generic error handler (`{"detail"}` only) cannot carry. The exception has already passed
    the request's unit of work, so nothing the attempt did is committed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_slot_taken(request: Request) -> Response:
            try:
                return await handle(request)
            except service.SlotTaken as taken:
                settings: Settings = request.app.state.runtime.settings
                body = SlotTakenOut(
                    detail=taken.message,
                    alternatives=[FreeSlotOut.of(s, settings.tz) for s in taken.alternatives],
                )
                return JSONResponse(body.model_dump(mode="json"), status_code=409)

        return handle_slot_taken


router = APIRouter(
    prefix="/api/dashboard/appointments", tags=["appointments"], route_class=_SlotTakenRoute
)


INVALID = error_response(
    422,
    "A parameter is invalid; `detail` says which and why.",
    [{"loc": ["query", "days"], "msg": "Input should be less than or equal to 7"}],
)
NO_APPOINTMENT = error_response(
    404, "No appointment with this id.", "There is no appointment 48213."
)
NOT_NOW = error_response(
    409,
    "The appointment's state does not allow this (already canceled, not yet started, ...).",
    "Only a pending appointment can be confirmed (this one is canceled).",
)
NOT_ALLOWED = error_response(403, "Neither your own nor are you an administrator.", NOT_YOURS)
NO_COUNSELOR = error_response(404, "No counselor with this id.", "There is no counselor 7.")
NO_ABSENCE = error_response(404, "No absence with this id.", "There is no absence 311.")
ADMIN_ONLY = error_response(403, "Not an administrator.", "Only administrators may do this.")
READ = {**NOT_LOGGED_IN, **INVALID}
WRITE = {**NOT_LOGGED_IN, **CSRF_REFUSED, **INVALID}
ACTION = {**WRITE, **NO_APPOINTMENT, **NOT_NOW}


def _today(settings: Settings) -> date:
    return datetime.now(settings.tz).date()


def _require_own_or_admin(counselor: Counselor, counselor_id: int) -> None:
    if counselor.id != counselor_id and not counselor.is_admin:
        raise PermissionDenied(NOT_YOURS)


async def _require_counselor(session: SessionDep, counselor_id: int) -> None:
    if await session.get(Counselor, counselor_id) is None:
        raise NotFound(f"There is no counselor {counselor_id}.")


async def _out(session: SessionDep, settings: Settings, appointment_id: int) -> AppointmentOut:
    view = await repository.get_appointment_view(session, appointment_id, settings.tz)
    return AppointmentOut.model_validate(view)


async def _active_between(
    session: SessionDep, settings: Settings, first: date, last: date, counselor_id: int | None
) -> list[AppointmentOut]:
    views = await repository.appointments_between(
        session,
        settings.tz,
        starts_from=day_bounds(first, settings.tz)[0],
        starts_before=day_bounds(last, settings.tz)[1],
        counselor_id=counselor_id,
        active_only=True,
    )
    return [AppointmentOut.model_validate(v) for v in views]


# --- reading: the list, the calendar, free slots ---------------------------------------------


@router.get("", responses=READ)
async def list_appointments(
    query: Annotated[AppointmentsQuery, Depends(FromQuery(AppointmentsQuery))],
    counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> AppointmentPage:
    """Appointments in start order (`order=desc`: latest first), 20 a page (`limit` up to 100).

    Filters combine: `status`, `counselor_id` (or `mine=true`), `student_id`, and `from`/`to`:
    office-local days (inclusive) or instants with an offset. Follow `next_cursor` (constant
    time at any depth) rather than counting pages; `page=N` also works.
    """
    page = await repository.appointment_page(
        session,
        query.filters(settings.tz, counselor.id),
        settings.tz,
        page=query.page,
        limit=query.limit,
        cursor=query.cursor,
    )
    return AppointmentPage.model_validate(page)


@router.get("/calendar", responses=READ)
async def calendar(
    query: Annotated[CalendarQuery, Depends(FromQuery(CalendarQuery))],
    _counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> CalendarOut:
    """The day or week view: every appointment of `days` office-local days from `start` (all
    statuses, in start order), the office's closed days and the absences touching them."""
    last = query.start + timedelta(days=query.days - 1)
    items = await repository.appointments_between(
        session,
        settings.tz,
        starts_from=day_bounds(query.start, settings.tz)[0],
        starts_before=day_bounds(last, settings.tz)[1],
        counselor_id=query.counselor_id,
    )
    closed = await repository.closed_days(session, first=query.start, last=last)
    away = await repository.absences(
        session, counselor_id=query.counselor_id, first=query.start, last=last
    )
    return CalendarOut(
        start=query.start,
        days=query.days,
        timezone=settings.office_timezone,
        items=[AppointmentOut.model_validate(v) for v in items],
        closed_days=[ClosedDayOut.model_validate(c) for c in closed],
        absences=[AbsenceOut.model_validate(a) for a in away],
    )


@router.get("/slots", responses=READ)
async def slots(
    query: Annotated[SlotsQuery, Depends(FromQuery(SlotsQuery))],
    _counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> SlotsOut:
    """The free slots of one office-local day (one counselor's, or everyone's merged), as a
    student would be offered them: within the booking window and its notice."""
    window = BookingWindow.of(settings)
    found = await free_slots_on(
        session,
        window,
        query.date,
        counselor_id=query.counselor_id,
        ignore_appointment_id=query.ignore_appointment_id,
    )
    return SlotsOut(
        date=query.date,
        timezone=settings.office_timezone,
        items=[FreeSlotOut.of(slot, settings.tz) for slot in found],
    )


@router.get("/slots/days", responses=READ)
async def slot_days(
    query: Annotated[FreeDaysQuery, Depends(FromQuery(FreeDaysQuery))],
    _counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> FreeDaysOut:
    """Up to `limit` days from `start` (default today) that have a free slot, and where to
    continue (`next_start`)."""
    found, next_start = await free_days(
        session,
        BookingWindow.of(settings),
        counselor_id=query.counselor_id,
        start=query.start,
        limit=query.limit,
        ignore_appointment_id=query.ignore_appointment_id,
    )
    return FreeDaysOut(
        items=[FreeDayOut(date=day.day, free=day.free) for day in found], next_start=next_start
    )


# --- weekly hours ---------------------------------------------------------------------------


@router.get("/availability/{counselor_id}", responses={**READ, **NO_COUNSELOR})
async def get_availability(
    counselor_id: int, _counselor: CurrentStaff, session: SessionDep
) -> AvailabilityOut:
    """A counselor's weekly hours, every day "0" (Monday) to "6" present."""
    await _require_counselor(session, counselor_id)
    return AvailabilityOut.of(counselor_id, await schedule.get_weekly_hours(session, counselor_id))


@router.put("/availability/{counselor_id}", responses={**WRITE, **NOT_ALLOWED, **NO_COUNSELOR})
async def set_availability(
    counselor_id: int, body: AvailabilityIn, counselor: CurrentCounselor, session: SessionDep
) -> AvailabilityOut:
    """Replace the whole week (yours, or anyone's for an administrator). Booked appointments
    stay; new bookings follow the new hours."""
    _require_own_or_admin(counselor, counselor_id)
    if body.counselor_id is not None and body.counselor_id != counselor_id:
        raise InvalidInput("counselor_id in the body differs from the one in the path.")
    hours = schedule.check_weekly_hours(body.slot_minutes, body.ranges())
    await schedule.set_weekly_hours(session, counselor_id, hours)
    return AvailabilityOut.of(counselor_id, hours)


# --- absences -------------------------------------------------------------------------------


@router.get("/absences", responses=READ)
async def list_absences(
    query: Annotated[AbsencesQuery, Depends(FromQuery(AbsencesQuery))],
    _counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> AbsenceList:
    """Absences lasting until `from` (default today) or later, by first day."""
    first = query.from_ or _today(settings)
    found = await repository.absences(session, counselor_id=query.counselor_id, first=first)
    return AbsenceList(items=[AbsenceOut.model_validate(a) for a in found])


@router.post("/absences", status_code=201, responses={**WRITE, **NOT_ALLOWED, **NO_COUNSELOR})
async def add_absence(
    body: AbsenceIn, counselor: CurrentCounselor, session: SessionDep, settings: SettingsDep
) -> AbsenceCreated:
    """Record days away (yours, or anyone's for an administrator). `conflicts` are that
    counselor's active appointments on those days, to reschedule or cancel."""
    _require_own_or_admin(counselor, body.counselor_id)
    absence = await schedule.add_absence(
        session,
        counselor_id=body.counselor_id,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        reason=body.reason,
        created_by_id=counselor.id,
    )
    view = await repository.absence_view(session, absence.id)
    conflicts = await _active_between(
        session, settings, body.starts_on, body.ends_on, body.counselor_id
    )
    return AbsenceCreated(absence=AbsenceOut.model_validate(view), conflicts=conflicts)


@router.post(
    "/absences/{absence_id}/cancel-conflicts",
    responses={**WRITE, **NOT_ALLOWED, **NO_ABSENCE},
)
async def cancel_absence_conflicts(
    absence_id: int,
    body: ReasonIn,
    counselor: CurrentCounselor,
    session: SessionDep,
    settings: SettingsDep,
) -> CanceledOut:
    """Cancel every active appointment inside the absence; each student is told `reason`."""
    absence = await schedule.get_absence(session, absence_id)
    _require_own_or_admin(counselor, absence.counselor_id)
    # Checked even when nothing collides, so a bad reason is never a silent success.
    reason = service.check_reason(body.reason, required=True)
    colliding = await _active_between(
        session, settings, absence.starts_on, absence.ends_on, absence.counselor_id
    )
    canceled = await service.do_cancel_for_absence(
        session, settings, [a.id for a in colliding], reason=reason
    )
    views = await repository.appointment_views(session, [a.id for a in canceled], settings.tz)
    return CanceledOut(canceled=[AppointmentOut.model_validate(v) for v in views])


@router.delete(
    "/absences/{absence_id}", status_code=204, responses={**WRITE, **NOT_ALLOWED, **NO_ABSENCE}
)
async def delete_absence(absence_id: int, counselor: CurrentCounselor, session: SessionDep) -> None:
    """Remove an absence (yours, or anyone's for an administrator): the days are bookable again."""
    absence = await schedule.get_absence(session, absence_id)
    _require_own_or_admin(counselor, absence.counselor_id)
    await schedule.delete_absence(session, absence)


# --- closed days ----------------------------------------------------------------------------


@router.get("/closed-days", responses=READ)
async def list_closed_days(
    query: Annotated[ClosedDaysQuery, Depends(FromQuery(ClosedDaysQuery))],
    _counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> ClosedDayList:
    """Days the whole office is closed, from `from` (default today) on."""
    found = await schedule.list_closed_days(session, from_day=query.from_ or _today(settings))
    return ClosedDayList(items=[ClosedDayOut.model_validate(c) for c in found])


@router.post("/closed-days", status_code=201, responses={**WRITE, **ADMIN_ONLY})
async def add_closed_day(
    body: ClosedDayIn, _admin: CurrentAdmin, session: SessionDep, settings: SettingsDep
) -> ClosedDayCreated:
    """Close the office for a day (administrators; again for the same day changes the reason).
    `conflicts` are everyone's active appointments that day."""
    closed = await schedule.add_closed_day(session, body.day, body.reason)
    conflicts = await _active_between(session, settings, body.day, body.day, None)
    return ClosedDayCreated(closed_day=ClosedDayOut.model_validate(closed), conflicts=conflicts)


@router.delete(
    "/closed-days/{day}",
    status_code=204,
    responses={
        **WRITE,
        **ADMIN_ONLY,
        **error_response(404, "Not a closed day.", "2026-12-12 is not a closed day."),
    },
)
async def delete_closed_day(day: date, _admin: CurrentAdmin, session: SessionDep) -> None:
    """Open the office again that day (administrators)."""
    await schedule.delete_closed_day(session, day)


# --- one appointment ------------------------------------------------------------------------


@router.get("/{appointment_id}", responses={**READ, **NO_APPOINTMENT})
async def get_appointment(
    appointment_id: int, _counselor: CurrentStaff, session: SessionDep, settings: SettingsDep
) -> AppointmentOut:
    return await _out(session, settings, appointment_id)


@router.post("/{appointment_id}/confirm", responses=ACTION)
async def confirm(
    appointment_id: int, _counselor: CurrentCounselor, session: SessionDep, settings: SettingsDep
) -> AppointmentOut:
    """Confirm a pending appointment that has not started; the student is told."""
    await service.do_confirm(session, settings, appointment_id)
    return await _out(session, settings, appointment_id)


@router.post("/{appointment_id}/cancel", responses=ACTION)
async def cancel(
    appointment_id: int,
    body: ReasonIn,
    _counselor: CurrentCounselor,
    session: SessionDep,
    settings: SettingsDep,
) -> AppointmentOut:
    """Cancel an active appointment; `reason` (required) is sent to the student."""
    await service.do_cancel_by_counselor(session, settings, appointment_id, reason=body.reason)
    return await _out(session, settings, appointment_id)


@router.post("/{appointment_id}/complete", responses=ACTION)
async def complete(
    appointment_id: int, _counselor: CurrentCounselor, session: SessionDep, settings: SettingsDep
) -> AppointmentOut:
    """The student came (once the appointment has started)."""
    await service.do_mark_attendance(session, settings, appointment_id, attended=True)
    return await _out(session, settings, appointment_id)


@router.post("/{appointment_id}/no-show", responses=ACTION)
async def no_show(
    appointment_id: int, _counselor: CurrentCounselor, session: SessionDep, settings: SettingsDep
) -> AppointmentOut:
    """The student did not come (once the appointment has started)."""
    await service.do_mark_attendance(session, settings, appointment_id, attended=False)
    return await _out(session, settings, appointment_id)


@router.post(
    "/{appointment_id}/reschedule",
    responses={
        **WRITE,
        **NO_APPOINTMENT,
        409: {
            "model": SlotTakenOut,
            "description": "The time is not a free slot (`alternatives`: the nearest free "
            "ones), or the appointment can no longer be moved (no `alternatives`).",
        },
    },
)
async def reschedule(
    appointment_id: int,
    body: RescheduleIn,
    _counselor: CurrentCounselor,
    session: SessionDep,
    settings: SettingsDep,
) -> AppointmentOut:
    """Move to a free slot (see /slots with `ignore_appointment_id`), of the same counselor or
    of `counselor_id`; the new time is confirmed and the student told."""
    await service.do_reschedule_by_counselor(
        session,
        settings,
        appointment_id,
        starts_at=body.starts_at,
        counselor_id=body.counselor_id,
    )
    return await _out(session, settings, appointment_id)

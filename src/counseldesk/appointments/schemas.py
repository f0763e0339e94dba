"""Shapes of the appointments JSON API (`/api/dashboard/appointments/...`).

The dashboard's calendar and list pages read exactly these; change them together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)
from pydantic.config import JsonDict

from counseldesk.appointments.availability import HoursRange, day_bounds
from counseldesk.appointments.models import (
    DEFAULT_SLOT_MINUTES,
    AppointmentStatus,
    CanceledBy,
)
from counseldesk.appointments.repository import (
    APPOINTMENTS_PER_PAGE,
    MAX_LIST_PAGE_SIZE,
    AppointmentFilters,
    Order,
)
from counseldesk.appointments.schedule import MAX_REASON as MAX_DAY_REASON
from counseldesk.appointments.schedule import WeeklyHours
from counseldesk.appointments.service import MAX_REASON
from counseldesk.appointments.slots import FreeSlot
from counseldesk.errors import InvalidInput

# One shape for {id, full_name} across the API (and one name in its OpenAPI schema).
from counseldesk.web.schemas import (
    CounselorRefOut,
    Cursor,
    PageNumber,
    PageOut,
    PositiveId,
    empty_is_none,
)

Day = date  # fields named `date` would shadow the type inside a class body

# Days and instants further from today than this are typos (and near the ends of the calendar,
# where a day's bounds in the office's zone cannot even be computed).
MAX_YEARS_AWAY = 100


def _near(value: date) -> date:
    this_year = datetime.now(UTC).year
    if abs(value.year - this_year) > MAX_YEARS_AWAY:
        raise ValueError(f"must lie within {MAX_YEARS_AWAY} years of today")
    return value


# A day a request names: office-local, not absurdly far away.
NearDay = Annotated[date, AfterValidator(_near)]


def _empty_is_asc(value: object) -> object:
    return Order.ASC if value == "" else value


# --- examples ----------------------------------------------------------------------------------

_COUNSELOR: JsonDict = {"id": 7, "full_name": "Wanjiku Kamau"}
_APPOINTMENT: JsonDict = {
    "id": 48213,
    "status": "confirmed",
    "starts_at": "2026-12-01T07:00:00Z",
    "ends_at": "2026-12-01T08:00:00Z",
    "local_date": "2026-12-01",
    "local_start": "10:00",
    "local_end": "11:00",
    "counselor": _COUNSELOR,
    "student": {"id": 52311, "full_name": "Faith Achieng", "admission_no": "SC/1001/2023"},
    "reason": "Exam stress",
    "cancel_reason": None,
    "canceled_by": None,
    "reschedule_count": 0,
    "created_at": "2026-11-25T08:41:12.512000Z",
    "updated_at": "2026-11-25T09:02:40.100000Z",
}
_CANCELED: JsonDict = {
    **_APPOINTMENT,
    "id": 48214,
    "status": "canceled",
    "cancel_reason": "I am away at a training that day; please book another time.",
    "canceled_by": "counselor",
}
_FREE_SLOT: JsonDict = {
    "starts_at": "2026-12-01T08:00:00Z",
    "ends_at": "2026-12-01T09:00:00Z",
    "local_time": "11:00",
    "counselors": [_COUNSELOR, {"id": 9, "full_name": "Brian Otieno"}],
}
_ABSENCE: JsonDict = {
    "id": 311,
    "counselor": _COUNSELOR,
    "starts_on": "2026-12-07",
    "ends_on": "2026-12-09",
    "reason": "Training in Mombasa",
    "created_at": "2026-11-25T08:41:12.512000Z",
}
_CLOSED_DAY: JsonDict = {"day": "2026-12-12", "reason": "Jamhuri Day"}
_CURSOR = "eyJwIjoyLCJrIjpbIjIwMjYtMTItMDFUMDc6MDA6MDArMDA6MDAiLDQ4MjEzXSwiZiI6IjNjOSJ9"


# --- parts ---------------------------------------------------------------------------------------


class StudentRefOut(BaseModel):
    id: int
    full_name: str
    admission_no: str

    model_config = ConfigDict(from_attributes=True)


class AppointmentOut(BaseModel):
    """One appointment, with local times in the office's zone for display."""

    id: int
    status: AppointmentStatus
    starts_at: datetime
    ends_at: datetime
    local_date: Day = Field(description="The office-local day it starts on.")
    local_start: str = Field(description="Office-local start, HH:MM.")
    local_end: str = Field(description="Office-local end, HH:MM.")
    counselor: CounselorRefOut
    student: StudentRefOut
    reason: str = Field(description="What the student wrote when booking (may be empty).")
    cancel_reason: str | None = Field(description="The counselor's reason, sent to the student.")
    canceled_by: CanceledBy | None
    reschedule_count: int
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_APPOINTMENT, _CANCELED]}
    )


class AppointmentPage(PageOut[AppointmentOut]):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "items": [_APPOINTMENT],
                    "page": 1,
                    "limit": 20,
                    "total": 412,
                    "total_is_estimate": False,
                    "has_next": True,
                    "next_cursor": _CURSOR,
                }
            ]
        },
    )


class FreeSlotOut(BaseModel):
    """A bookable time, and who is free then (in the order "first available" would pick)."""

    starts_at: datetime
    ends_at: datetime
    local_time: str = Field(description="Office-local start, HH:MM.")
    counselors: list[CounselorRefOut]

    model_config = ConfigDict(json_schema_extra={"examples": [_FREE_SLOT]})

    @classmethod
    def of(cls, slot: FreeSlot, tz: ZoneInfo) -> FreeSlotOut:
        return cls(
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            local_time=f"{slot.starts_at.astimezone(tz):%H:%M}",
            counselors=[
                CounselorRefOut(id=offer.counselor_id, full_name=offer.counselor_name)
                for offer in slot.offers
            ],
        )


class SlotsOut(BaseModel):
    date: Day
    timezone: str
    items: list[FreeSlotOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"date": "2026-12-01", "timezone": "Africa/Nairobi", "items": [_FREE_SLOT]}
            ]
        }
    )


class FreeDayOut(BaseModel):
    date: Day
    free: int = Field(description="How many free slots that day has.")


class FreeDaysOut(BaseModel):
    items: list[FreeDayOut]
    next_start: Day | None = Field(
        description="Pass as `start` for the following days; null when the booking window "
        "holds no more."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"date": "2026-12-01", "free": 5}, {"date": "2026-12-02", "free": 7}],
                    "next_start": "2026-12-03",
                }
            ]
        }
    )


class SlotTakenOut(BaseModel):
    """The time asked for is not free (any more); the nearest free slots instead."""

    detail: str
    alternatives: list[FreeSlotOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "Tue 1 Dec 2026, 10:00 is not a free slot (any more).",
                    "alternatives": [_FREE_SLOT],
                }
            ]
        }
    )


class AbsenceOut(BaseModel):
    id: int
    counselor: CounselorRefOut
    starts_on: Day
    ends_on: Day = Field(description="The last day away (inclusive).")
    reason: str
    created_at: datetime

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_ABSENCE]})


class AbsenceList(BaseModel):
    items: list[AbsenceOut]


class ClosedDayOut(BaseModel):
    day: Day
    reason: str

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_CLOSED_DAY]})


class ClosedDayList(BaseModel):
    items: list[ClosedDayOut]


class CalendarOut(BaseModel):
    """What the day and week views show: every appointment (all statuses) of the days, the
    office's closed days and the absences that touch them."""

    start: Day
    days: int
    timezone: str
    items: list[AppointmentOut]
    closed_days: list[ClosedDayOut]
    absences: list[AbsenceOut]

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-11-30",
                    "days": 7,
                    "timezone": "Africa/Nairobi",
                    "items": [_APPOINTMENT, _CANCELED],
                    "closed_days": [_CLOSED_DAY],
                    "absences": [_ABSENCE],
                }
            ]
        },
    )


class AbsenceCreated(BaseModel):
    absence: AbsenceOut
    conflicts: list[AppointmentOut] = Field(
        description="Active appointments of the counselor on those days: reschedule or cancel "
        "them (cancel-conflicts cancels them all)."
    )

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"absence": _ABSENCE, "conflicts": [_APPOINTMENT]}]},
    )


class ClosedDayCreated(BaseModel):
    closed_day: ClosedDayOut
    conflicts: list[AppointmentOut] = Field(
        description="Active appointments of anyone on that day."
    )

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"closed_day": _CLOSED_DAY, "conflicts": [_APPOINTMENT]}]},
    )


class CanceledOut(BaseModel):
    canceled: list[AppointmentOut]

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [{"canceled": [_CANCELED]}]}
    )


# --- working hours -------------------------------------------------------------------------------

_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _parse_hh_mm(value: object) -> object:
    if isinstance(value, str):
        if not _HH_MM.match(value):
            raise ValueError(f"a time of day is HH:MM (00:00 to 23:59), not {value!r}")
        return time(int(value[:2]), int(value[3:]))
    return value


HourMinute = Annotated[
    time,
    BeforeValidator(_parse_hh_mm),
    WithJsonSchema({"type": "string", "pattern": _HH_MM.pattern, "examples": ["09:00"]}),
]


class HoursOut(BaseModel):
    start: str
    end: str


class HoursIn(BaseModel):
    start: HourMinute
    end: HourMinute

    model_config = ConfigDict(extra="forbid")


_WEEK: JsonDict = {
    "counselor_id": 7,
    "slot_minutes": 60,
    "days": {
        "0": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
        "1": [{"start": "09:00", "end": "12:00"}],
        "2": [],
        "3": [{"start": "09:00", "end": "17:00"}],
        "4": [{"start": "09:00", "end": "13:00"}],
        "5": [],
        "6": [],
    },
}


class AvailabilityOut(BaseModel):
    """A counselor's weekly hours: days "0" (Monday) to "6" (Sunday), each a list of ranges in
    office-local time, cut into slots of `slot_minutes`."""

    counselor_id: int
    slot_minutes: int
    days: dict[str, list[HoursOut]]

    model_config = ConfigDict(json_schema_extra={"examples": [_WEEK]})

    @classmethod
    def of(cls, counselor_id: int, hours: WeeklyHours) -> AvailabilityOut:
        return cls(
            counselor_id=counselor_id,
            slot_minutes=hours.slot_minutes,
            days={
                str(weekday): [
                    HoursOut(start=f"{span.starts_at:%H:%M}", end=f"{span.ends_at:%H:%M}")
                    for span in hours.days.get(weekday, [])
                ]
                for weekday in range(7)
            },
        )


class AvailabilityIn(BaseModel):
    """The whole week replaces the old one; a day left out has no hours."""

    counselor_id: int | None = Field(
        default=None, description="Optional; when given, the same as the one in the path."
    )
    slot_minutes: int = DEFAULT_SLOT_MINUTES
    days: dict[int, list[HoursIn]] = Field(description='"0" (Monday) to "6" (Sunday).')

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_WEEK]})

    def ranges(self) -> dict[int, Sequence[HoursRange]]:
        return {
            weekday: [HoursRange(span.start, span.end) for span in spans]
            for weekday, spans in self.days.items()
        }


# --- query parameters ----------------------------------------------------------------------------


def _parse_bound(value: object) -> date | datetime | None:
    """A list bound: an office-local day (YYYY-MM-DD) or an instant with its offset."""
    if value is None or value == "":
        return None
    if isinstance(value, date):  # also datetime
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD) or a date and time with offset")
    text = value.strip()
    if len(text) == 10:
        try:
            return _near(date.fromisoformat(text))
        except ValueError as exc:
            if "within" in str(exc):
                raise
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    # A `+` typed into a URL arrives as a space: "10:00:00 03:00" means "+03:00".
    if "T" in text and " " in text:
        text = text.replace(" ", "+")
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a date (YYYY-MM-DD) nor a date and time "
            "(YYYY-MM-DDTHH:MM:SS+03:00)"
        ) from None
    if instant.tzinfo is None:
        raise ValueError("a date and time must include its offset (e.g. +03:00 or Z)")
    _near(instant.date())
    return instant


DayOrInstant = Annotated[
    date | datetime | None,
    PlainValidator(_parse_bound),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ],
            "description": "An office-local day (inclusive) or an instant with its offset.",
        }
    ),
]
OptionalId = Annotated[PositiveId | None, BeforeValidator(empty_is_none)]


def _start_of(bound: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(bound, datetime):
        return bound.astimezone(UTC)
    return day_bounds(bound, tz)[0]


def _end_of(bound: date | datetime, tz: ZoneInfo) -> datetime:
    """The exclusive end: the next day's start for a day, the next microsecond for an instant
    (PostgreSQL keeps microseconds), so `to` includes what it names."""
    if isinstance(bound, datetime):
        return bound.astimezone(UTC) + timedelta(microseconds=1)
    return day_bounds(bound, tz)[1]


class AppointmentsQuery(BaseModel):
    page: PageNumber = 1
    limit: int = Field(default=APPOINTMENTS_PER_PAGE, ge=1, le=MAX_LIST_PAGE_SIZE)
    cursor: Cursor = None
    status: Annotated[AppointmentStatus | None, BeforeValidator(empty_is_none)] = None
    counselor_id: OptionalId = None
    mine: Annotated[bool, BeforeValidator(lambda v: False if v == "" else v)] = Field(
        default=False, description="Only your appointments (the same as your counselor_id)."
    )
    student_id: OptionalId = None
    from_: DayOrInstant = Field(default=None, alias="from")
    to: DayOrInstant = None
    order: Annotated[Order, BeforeValidator(_empty_is_asc)] = Field(
        default=Order.ASC, description="asc: soonest first; desc: latest first."
    )

    model_config = ConfigDict(populate_by_name=True)

    def filters(self, tz: ZoneInfo, me: int) -> AppointmentFilters:
        counselor_id = self.counselor_id
        if self.mine:
            if counselor_id is not None and counselor_id != me:
                raise InvalidInput("Give mine=true or another counselor's counselor_id, not both.")
            counselor_id = me
        starts_from = None if self.from_ is None else _start_of(self.from_, tz)
        starts_before = None if self.to is None else _end_of(self.to, tz)
        if starts_from is not None and starts_before is not None and starts_from >= starts_before:
            raise InvalidInput("from must be before to.")
        return AppointmentFilters(
            status=self.status,
            counselor_id=counselor_id,
            student_id=self.student_id,
            starts_from=starts_from,
            starts_before=starts_before,
            order=self.order,
        )


class CalendarQuery(BaseModel):
    start: NearDay = Field(description="The first office-local day shown.")
    days: int = Field(default=7, ge=1, le=7, description="1 (day view) to 7 (week view).")
    counselor_id: OptionalId = None


class SlotsQuery(BaseModel):
    date: NearDay
    counselor_id: OptionalId = None
    ignore_appointment_id: Annotated[
        OptionalId, Field(description="The appointment being moved: its time counts as free.")
    ] = None


class FreeDaysQuery(BaseModel):
    counselor_id: OptionalId = None
    start: Annotated[NearDay | None, BeforeValidator(empty_is_none)] = Field(
        default=None, description="The first day to look at; default today."
    )
    limit: int = Field(default=7, ge=1, le=31)
    ignore_appointment_id: OptionalId = None


class AbsencesQuery(BaseModel):
    counselor_id: OptionalId = None
    from_: Annotated[NearDay | None, BeforeValidator(empty_is_none)] = Field(
        default=None,
        alias="from",
        description="Absences that last until this day or later; default today.",
    )

    model_config = ConfigDict(populate_by_name=True)


class ClosedDaysQuery(BaseModel):
    from_: Annotated[NearDay | None, BeforeValidator(empty_is_none)] = Field(
        default=None, alias="from", description="Closed days from this day on; default today."
    )

    model_config = ConfigDict(populate_by_name=True)


# --- request bodies -----------------------------------------------------------------------------


class ReasonIn(BaseModel):
    reason: str = Field(max_length=MAX_REASON, description="Sent to the student.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "I am away at a training that day; please book another time."}]
        },
    )


class RescheduleIn(BaseModel):
    starts_at: AwareDatetime = Field(description="A free slot's starts_at (see /slots).")
    counselor_id: int | None = Field(
        default=None, ge=1, description="Move to a colleague; default the same counselor."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"starts_at": "2026-12-02T06:00:00Z"},
                {"starts_at": "2026-12-02T06:00:00Z", "counselor_id": 9},
            ]
        },
    )


class AbsenceIn(BaseModel):
    counselor_id: int = Field(ge=1)
    starts_on: NearDay
    ends_on: NearDay = Field(description="The last day away (inclusive).")
    reason: str = Field(default="", max_length=MAX_DAY_REASON)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "counselor_id": 7,
                    "starts_on": "2026-12-07",
                    "ends_on": "2026-12-09",
                    "reason": "Training in Mombasa",
                }
            ]
        },
    )


class ClosedDayIn(BaseModel):
    day: NearDay
    reason: str = Field(default="", max_length=MAX_DAY_REASON)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CLOSED_DAY]})

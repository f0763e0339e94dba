"""Shapes of the support JSON API (`/api/dashboard/support/...`).

The dashboard's inbox and chat read exactly these; change them together with its scripts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from counseldesk.db.paging import MAX_PAGE_SIZE
from counseldesk.support.models import SenderType, TicketPriority, TicketStatus
from counseldesk.support.repository import (
    MAX_QUERY_LENGTH,
    MESSAGES_PER_PAGE,
    TICKETS_PER_PAGE,
    UNREAD_CAP,
    Assigned,
    Delivery,
    InboxFilters,
    clean_query,
)
from counseldesk.support.service import MAX_BODY
from counseldesk.web.schemas import (
    CounselorRefOut,
    Cursor,
    PageNumber,
    PageOut,
    PositiveId,
    empty_is_none,
)


def _empty_is_default(value: object) -> object:
    return "all" if value == "" else value


# --- examples ----------------------------------------------------------------------------------

_STUDENT: JsonDict = {
    "id": 52311,
    "full_name": "Faith Achieng",
    "admission_no": "SC/1001/2023",
    "telegram_user_id": 700000001,
}
_SUMMARY: JsonDict = {
    "id": 1834502,
    "subject": "Exam stress",
    "status": "in_progress",
    "priority": "high",
    "category": {"id": 3, "name": "Mental health"},
    "student": _STUDENT,
    "assigned_counselor": {"id": 7, "full_name": "Wanjiku Kamau"},
    "last_activity_at": "2026-11-25T08:41:12.512000Z",
    "last_message_preview": "I have been very stressed about my exams and I cannot concentrate.",
    "last_sender_type": "student",
    "message_count": 12,
    "unread_count": 2,
    "crisis": False,
    "created_at": "2026-11-20T14:03:55.102000Z",
}
_DETAIL: JsonDict = {
    **_SUMMARY,
    "student": {**_STUDENT, "phone": "+254700000001", "year_of_study": 2},
    "closed_at": None,
    "crisis_detected_at": None,
}
_MESSAGE: JsonDict = {
    "id": 90412231,
    "ticket_id": 1834502,
    "sender_type": "counselor",
    "counselor": {"id": 7, "full_name": "Wanjiku Kamau"},
    "body": "Thank you for reaching out. Let us book a session this week.",
    "is_internal": False,
    "media": None,
    "created_at": "2026-11-25T08:45:02.000000Z",
    "delivery": {"status": "sent", "error": None, "notification_id": 77120931},
}
_PHOTO: JsonDict = {
    **_MESSAGE,
    "id": 90412230,
    "sender_type": "student",
    "counselor": None,
    "body": "",
    "media": {
        "kind": "photo",
        "file_name": None,
        "mime_type": "image/jpeg",
        "url": "/api/dashboard/support/messages/90412230/media",
    },
    "delivery": None,
}
_CURSOR = "eyJwIjoyLCJrIjpbIjIwMjYtMTEtMjVUMDg6NDE6MTIuNTEyKzAwOjAwIiwxODM0NTAyXSwiZiI6IjNjOSJ9"


# --- parts ---------------------------------------------------------------------------------------


class CategoryOut(BaseModel):
    id: int
    name: str

    model_config = ConfigDict(from_attributes=True)


class StudentOut(BaseModel):
    id: int
    full_name: str
    admission_no: str
    telegram_user_id: int

    model_config = ConfigDict(from_attributes=True)


class StudentDetailOut(StudentOut):
    phone: str
    year_of_study: int


class TicketSummary(BaseModel):
    """One row of the inbox."""

    id: int
    subject: str
    status: TicketStatus
    priority: TicketPriority
    category: CategoryOut | None
    student: StudentOut
    assigned_counselor: CounselorRefOut | None
    last_activity_at: datetime
    last_message_preview: str
    last_sender_type: SenderType | None
    message_count: int = Field(description="Every entry of the timeline, notes included.")
    unread_count: int = Field(
        description=f"Student messages after your read mark; {UNREAD_CAP} means "
        f"{UNREAD_CAP} or more."
    )
    crisis: bool = Field(description="Crisis wording was detected in this conversation.")
    created_at: datetime

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_SUMMARY]})


class TicketDetail(TicketSummary):
    """A ticket with what the chat header shows."""

    student: StudentDetailOut
    closed_at: datetime | None
    crisis_detected_at: datetime | None

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_DETAIL]})


class MediaOut(BaseModel):
    kind: str = Field(description="photo, document or voice.")
    file_name: str | None
    mime_type: str | None
    url: str = Field(description="Fetch the file through the dashboard (logged in).")

    model_config = ConfigDict(from_attributes=True)


class DeliveryOut(BaseModel):
    status: Delivery = Field(description="queued (waiting or being sent), sent, failed.")
    error: str | None = Field(description="Why the delivery failed (failed only).")
    notification_id: int

    model_config = ConfigDict(from_attributes=True)


class MessageOut(BaseModel):
    """One entry of a conversation's timeline."""

    id: int
    ticket_id: int
    sender_type: SenderType
    counselor: CounselorRefOut | None
    body: str
    is_internal: bool = Field(description="An internal note or a system event: never sent.")
    media: MediaOut | None
    created_at: datetime
    delivery: DeliveryOut | None = Field(
        description="For a counselor's reply: the state of its delivery to the student. "
        "null for other entries, and for replies whose outbox row was archived."
    )

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_MESSAGE, _PHOTO]}
    )


class TicketPage(PageOut[TicketSummary]):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "items": [_SUMMARY],
                    "page": 1,
                    "limit": 20,
                    "total": 2000000,
                    "total_is_estimate": True,
                    "has_next": True,
                    "next_cursor": _CURSOR,
                }
            ]
        },
    )


class MessagePage(PageOut[MessageOut]):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "items": [_PHOTO, _MESSAGE],
                    "page": 1,
                    "limit": 50,
                    "total": 12,
                    "total_is_estimate": False,
                    "has_next": False,
                    "next_cursor": None,
                }
            ]
        },
    )


# --- query parameters ---------------------------------------------------------------------------


class InboxQuery(BaseModel):
    page: PageNumber = 1
    limit: int = Field(default=TICKETS_PER_PAGE, ge=1, le=MAX_PAGE_SIZE)
    status: Annotated[TicketStatus | None, BeforeValidator(empty_is_none)] = None
    priority: Annotated[TicketPriority | None, BeforeValidator(empty_is_none)] = None
    category_id: Annotated[PositiveId | None, BeforeValidator(empty_is_none)] = None
    assigned: Annotated[Assigned, BeforeValidator(_empty_is_default)] = Assigned.ALL
    q: Annotated[
        Annotated[str, Field(max_length=MAX_QUERY_LENGTH)] | None,
        BeforeValidator(empty_is_none),
        Field(
            description="Search subject, student name, admission number (prefix) and "
            "message text. Words are matched whole; quotes, OR and -word work as on the web.",
        ),
    ] = None
    cursor: Cursor = None

    @field_validator("q")
    @classmethod
    def _clean_q(cls, value: str | None) -> str | None:
        return clean_query(value)

    def filters(self) -> InboxFilters:
        return InboxFilters(
            status=self.status,
            priority=self.priority,
            category_id=self.category_id,
            assigned=self.assigned,
            q=self.q,
        )


class MessagesQuery(BaseModel):
    page: PageNumber = 1
    limit: int = Field(default=MESSAGES_PER_PAGE, ge=1, le=MAX_PAGE_SIZE)
    before: Annotated[
        PositiveId | None,
        BeforeValidator(empty_is_none),
        Field(description="Only messages older than this message id."),
    ] = None
    cursor: Cursor = None


# --- request bodies -----------------------------------------------------------------------------


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=MAX_BODY)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"body": "Thank you for reaching out. Does Thursday at 10 work?"}]
        }
    )


class TicketPatch(BaseModel):
    """Only the fields present change; `"assigned_counselor_id": null` unassigns."""

    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    assigned_counselor_id: int | None = Field(default=None, ge=1)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "resolved"},
                {"priority": "urgent", "assigned_counselor_id": 7},
                {"assigned_counselor_id": None},
            ]
        },
    )

    @field_validator("status", "priority", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


class ReadIn(BaseModel):
    up_to_message_id: int | None = Field(
        default=None,
        ge=1,
        description="Read up to this message; absent: up to the newest student message.",
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"up_to_message_id": 90412231}, {}]}
    )

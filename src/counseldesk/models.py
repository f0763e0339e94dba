"""Every feature's models in one import, so Alembic (and `alembic check`) sees the whole schema."""

from counseldesk.appointments.models import (
    Absence,
    Appointment,
    ClosedDay,
    CounselorSchedule,
    WorkingHours,
)
from counseldesk.content.models import OfficeSettings
from counseldesk.db.base import Base
from counseldesk.staff.models import Counselor, StaffSession
from counseldesk.students.models import Student, UserSession
from counseldesk.support.models import (
    CrisisTerm,
    SupportCategory,
    SupportMessage,
    SupportTicket,
    TicketRead,
)
from counseldesk.telegram.models import BotState, Notification, ProcessedUpdate

__all__ = [
    "Absence",
    "Appointment",
    "Base",
    "BotState",
    "ClosedDay",
    "Counselor",
    "CounselorSchedule",
    "CrisisTerm",
    "Notification",
    "OfficeSettings",
    "ProcessedUpdate",
    "StaffSession",
    "Student",
    "SupportCategory",
    "SupportMessage",
    "SupportTicket",
    "TicketRead",
    "UserSession",
    "WorkingHours",
]

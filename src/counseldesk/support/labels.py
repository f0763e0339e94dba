"""How a ticket's status and priority read to people: in the dashboard's menus and in the
timeline notes that record a change."""

from __future__ import annotations

from counseldesk.support.models import TicketPriority, TicketStatus

STATUS_LABELS = {
    TicketStatus.OPEN: "Open",
    TicketStatus.IN_PROGRESS: "In progress",
    TicketStatus.REPLIED: "Replied",
    TicketStatus.RESOLVED: "Resolved",
    TicketStatus.CLOSED: "Closed",
}
PRIORITY_LABELS = {
    TicketPriority.LOW: "Low",
    TicketPriority.MEDIUM: "Medium",
    TicketPriority.HIGH: "High",
    TicketPriority.URGENT: "Urgent",
}

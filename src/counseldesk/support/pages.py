"""Dashboard pages of the support desk: the inbox (/support) and a conversation (/support/{id}).

The routes render a shell; the scripts (static/support_*.js) load the data from the JSON API
(support/api.py) and follow the live event stream (/api/dashboard/events). Also here: the list of
active counselors the chat's assign menu offers, which every counselor may read (the admin
counselor list, /api/staff/counselors, is for administrators).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from counseldesk.staff import service as staff_service
from counseldesk.staff.api import NOT_LOGGED_IN
from counseldesk.staff.deps import CurrentStaff, PageCounselor
from counseldesk.support import service
from counseldesk.support.labels import PRIORITY_LABELS, STATUS_LABELS
from counseldesk.web.deps import SessionDep, SettingsDep
from counseldesk.web.schemas import CounselorRefOut
from counseldesk.web.templating import render

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/dashboard", tags=["support"])


@router.get("/support")
async def inbox_page(
    request: Request, counselor: PageCounselor, session: SessionDep, settings: SettingsDep
) -> Response:
    return render(
        request,
        "support_inbox.html",
        {
            "categories": await service.list_categories(session),
            "statuses": STATUS_LABELS,
            "priorities": PRIORITY_LABELS,
            "timezone": settings.office_timezone,
        },
    )


@router.get("/support/{ticket_id}")
async def chat_page(
    request: Request,
    ticket_id: int,
    counselor: PageCounselor,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    ticket = await service.get_ticket(session, ticket_id)  # an unknown id gets the 404 page
    return render(
        request,
        "support_chat.html",
        {
            "ticket_id": ticket.id,
            "subject": ticket.subject,
            "statuses": STATUS_LABELS,
            "priorities": PRIORITY_LABELS,
            "timezone": settings.office_timezone,
        },
    )


@api_router.get("/counselors", responses=NOT_LOGGED_IN)
async def list_active_counselors(
    _counselor: CurrentStaff, session: SessionDep
) -> list[CounselorRefOut]:
    """Active counselors, by name: whom a ticket can be assigned to."""
    counselors = await staff_service.list_counselors(session)
    return [CounselorRefOut.model_validate(c) for c in counselors if c.is_active]

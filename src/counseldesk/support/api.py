"""Support JSON API: the inbox, a ticket, its chat, replies, notes, changes, read marks,
delivery retries and student media. Every route needs a logged-in counselor; the inbox is
shared, so any counselor may act on any ticket.

The seed's two endpoints are `GET /api/dashboard/support/tickets?page=1&limit=20` and
`GET /api/dashboard/support/tickets/{id}/messages?page=1&limit=50`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import TypeAdapter

from counseldesk.db.paging import Page
from counseldesk.errors import NotFound
from counseldesk.staff.api import CSRF_REFUSED, NOT_LOGGED_IN
from counseldesk.staff.deps import CurrentCounselor, CurrentStaff
from counseldesk.support import media, repository, service
from counseldesk.support.schemas import (
    InboxQuery,
    MessageIn,
    MessageOut,
    MessagePage,
    MessagesQuery,
    ReadIn,
    TicketDetail,
    TicketPage,
    TicketPatch,
)
from counseldesk.web.deps import ReaderDep, SessionDep, SettingsDep
from counseldesk.web.openapi import error_response
from counseldesk.web.query import FromQuery, QueryModelRoute

router = APIRouter(
    prefix="/api/dashboard/support",
    tags=["support"],
    lifespan=media.media_lifespan,
    route_class=QueryModelRoute,
)


INVALID = error_response(
    422,
    "A parameter is invalid; `detail` says which and why.",
    [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100"}],
)
NO_TICKET = error_response(404, "No ticket with this id.", "Ticket 1834502 does not exist.")
NO_MESSAGE = error_response(404, "No message with this id.", "Message 90412231 does not exist.")
READ = {**NOT_LOGGED_IN, **INVALID}
WRITE = {**NOT_LOGGED_IN, **CSRF_REFUSED, **INVALID, **NO_TICKET}


# The list pages go straight from the repository's views to JSON. Their dataclasses have the
# schemas' fields (tests/support/test_api.py holds the two to the same JSON), so copying every
# row into a response model first (0.1 ms a page) bought nothing; `response_model` still
# describes them in the OpenAPI schema.
_TICKET_PAGE = TypeAdapter(Page[repository.TicketView])
_MESSAGE_PAGE = TypeAdapter(Page[repository.MessageView])


def _json(adapter: TypeAdapter[Any], page: Page[Any]) -> Response:
    return Response(adapter.dump_json(page), media_type="application/json")


InboxQueryDep = Annotated[InboxQuery, Depends(FromQuery(InboxQuery))]
MessagesQueryDep = Annotated[MessagesQuery, Depends(FromQuery(MessagesQuery))]


@router.get("/tickets", responses=READ, response_model=TicketPage)
async def list_tickets(
    query: InboxQueryDep, counselor: CurrentStaff, reader: ReaderDep
) -> Response:
    """The inbox: tickets by last activity, newest first, 20 a page (`limit` up to 100).

    Filters combine. `assigned=mine` is your tickets, `unassigned` nobody's. `q` searches
    subject, student name, admission number (prefix) and message text. Follow `next_cursor`
    (constant time at any depth) rather than counting pages; `page=N` also works.
    `unread_count` is per counselor: student messages after your read mark.
    """
    page = await repository.ticket_page(
        reader,
        counselor.id,
        query.filters(),
        page=query.page,
        limit=query.limit,
        cursor=query.cursor,
    )
    return _json(_TICKET_PAGE, page)


@router.get("/tickets/{ticket_id}", responses={**READ, **NO_TICKET})
async def get_ticket(ticket_id: int, counselor: CurrentStaff, session: SessionDep) -> TicketDetail:
    """One ticket, with the student's contact details."""
    view = await repository.get_ticket_view(session, ticket_id, counselor.id)
    return TicketDetail.model_validate(view)


@router.get(
    "/tickets/{ticket_id}/messages",
    responses={**READ, **NO_TICKET},
    response_model=MessagePage,
)
async def list_messages(
    ticket_id: int,
    query: MessagesQueryDep,
    _counselor: CurrentStaff,
    reader: ReaderDep,
) -> Response:
    """A conversation, 50 messages a page from the newest; each page oldest first.

    Page 1 is the newest 50. Older ones: `next_cursor`, or `before=<message id>`, or `page=2`.
    Internal notes and system events are included (`is_internal`); a reply shows its
    delivery state.
    """
    page = await repository.message_page(
        reader,
        ticket_id,
        page=query.page,
        limit=query.limit,
        before=query.before,
        cursor=query.cursor,
    )
    return _json(_MESSAGE_PAGE, page)


@router.post("/tickets/{ticket_id}/messages", status_code=201, responses=WRITE)
async def reply(
    ticket_id: int, body: MessageIn, counselor: CurrentCounselor, session: SessionDep
) -> MessageOut:
    """Answer the student: stored at once, delivered by the outbox (`delivery.status` queued,
    then sent or failed — live events follow it)."""
    ticket = await service.get_ticket(session, ticket_id, for_update=True)
    message = await service.do_reply(session, counselor, ticket, body=body.body)
    return MessageOut.model_validate(await repository.get_message_view(session, message.id))


@router.post("/tickets/{ticket_id}/notes", status_code=201, responses=WRITE)
async def add_note(
    ticket_id: int, body: MessageIn, counselor: CurrentCounselor, session: SessionDep
) -> MessageOut:
    """An internal note: in the timeline for counselors, never sent to the student."""
    ticket = await service.get_ticket(session, ticket_id, for_update=True)
    message = await service.do_add_note(session, counselor, ticket, body=body.body)
    return MessageOut.model_validate(await repository.get_message_view(session, message.id))


@router.patch("/tickets/{ticket_id}", responses=WRITE)
async def update_ticket(
    ticket_id: int, body: TicketPatch, counselor: CurrentCounselor, session: SessionDep
) -> TicketDetail:
    """Change status, priority or assignee (only the fields sent; `null` assignee
    unassigns). Each change is written into the timeline."""
    changes: dict[str, Any] = {}
    if "status" in body.model_fields_set:
        changes["status"] = body.status
    if "priority" in body.model_fields_set:
        changes["priority"] = body.priority
    if "assigned_counselor_id" in body.model_fields_set:
        changes["assignee_id"] = body.assigned_counselor_id
    ticket = await service.get_ticket(session, ticket_id, for_update=True)
    await service.do_update_ticket(session, counselor, ticket, **changes)
    view = await repository.get_ticket_view(session, ticket_id, counselor.id)
    return TicketDetail.model_validate(view)


@router.post("/tickets/{ticket_id}/read", status_code=204, responses=WRITE)
async def mark_read(
    ticket_id: int, counselor: CurrentCounselor, session: SessionDep, body: ReadIn | None = None
) -> None:
    """You have read the conversation (up to `up_to_message_id`, or all of it): your unread
    count for it drops. Read marks never move backwards."""
    ticket = await service.get_ticket(session, ticket_id)
    up_to = body.up_to_message_id if body is not None else None
    await service.do_mark_read_until(session, counselor, ticket, up_to)


@router.post(
    "/messages/{message_id}/retry",
    responses={
        **NOT_LOGGED_IN,
        **CSRF_REFUSED,
        **NO_MESSAGE,
        **error_response(
            409,
            "Not a failed reply (queued or sent ones are not retried).",
            "Only a failed delivery can be retried; this one is sent.",
        ),
    },
)
async def retry_delivery(
    message_id: int, counselor: CurrentCounselor, session: SessionDep
) -> MessageOut:
    """Send a reply whose delivery failed once more (`delivery.status` back to queued)."""
    message = await service.do_retry_delivery(session, counselor, message_id)
    return MessageOut.model_validate(await repository.get_message_view(session, message.id))


@router.get(
    "/messages/{message_id}/media",
    response_class=FileResponse,
    status_code=200,
    responses={
        200: {
            "description": "The file, with its content type; cacheable (privately) for a year.",
            "content": {"image/jpeg": {}, "audio/ogg": {}, "application/octet-stream": {}},
        },
        **NOT_LOGGED_IN,
        **error_response(
            404,
            "No such message, no media in it, or Telegram no longer has the file.",
            "This file is no longer available from Telegram.",
        ),
        **error_response(
            502,
            "Telegram did not deliver the file; try again.",
            "Telegram did not deliver the file; try again.",
        ),
    },
)
async def get_media(
    message_id: int,
    request: Request,
    _counselor: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """The photo, document or voice message a student sent, streamed through the server."""
    message = await service.get_message(session, message_id)
    if not message.media_file_id:
        raise NotFound(f"Message {message_id} has no attachment.")
    path = await media.cached_file(settings, media.media_bot(request), message.media_file_id)
    document = message.media_kind == "document"
    return FileResponse(
        path,
        media_type=media.content_type(message),
        # A document downloads (under its name); photos and voice show in the page.
        filename=message.media_file_name or ("document" if document else None),
        content_disposition_type="attachment" if document else "inline",
        headers=media.response_headers(),
    )

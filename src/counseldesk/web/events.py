"""The dashboard's live event stream (Server-Sent Events).

The route lives in web/ rather than realtime/ because it needs the staff login dependency, and
realtime/ must not import features; the stream itself is realtime/sse.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from counseldesk.realtime.sse import EventStreamResponse, event_frames
from counseldesk.staff.deps import CurrentStaff
from counseldesk.web.deps import RuntimeDep

router = APIRouter(tags=["live updates"])

STREAM_DESCRIPTION = """\
A `text/event-stream` of everything that happens in the office, for `EventSource`.

Each event has an `id:` (send it back as the `Last-Event-ID` header, or the `last_event_id` query
parameter, to get what was missed), an `event:` type (`ticket.created`, `ticket.updated`,
`ticket.crisis`, `message.created`, `notification.updated`, `appointment.created`,
`appointment.updated`, ...) and a JSON `data:` line.
Control events: `ready` (caught up, now live), `resync` (what was missed is no longer known:
reload from the JSON API). A `: keepalive` comment comes every 15 seconds. The server ends the
stream now and then (every ~20 minutes, and when it stops); browsers reconnect by themselves.
"""


@router.get(
    "/api/dashboard/events",
    response_class=EventStreamResponse,
    status_code=200,
    description=STREAM_DESCRIPTION,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}},
)
async def dashboard_events(
    _staff: CurrentStaff,
    runtime: RuntimeDep,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64)
    ] = None,
    last_event_id: Annotated[str | None, Query(max_length=64)] = None,
) -> EventStreamResponse:
    # The login is checked once, in a unit of work that ended before this runs, so an open
    # stream holds no pooled connection. Every counselor sees every ticket, internal notes
    # included, so nothing is filtered per person.
    return EventStreamResponse(event_frames(runtime.bus, last_event_id_header or last_event_id))

"""JSON routes of the student simulator page, under /simulator/api/ (administrators only).

They pass the page's actions on to the emulator's control API and its answers back, so the
browser never talks to the emulator (which listens on loopback and checks nobody) directly.
Left out of the OpenAPI description: they serve this one page, not API clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from counseldesk.simulator import service
from counseldesk.simulator.deps import EmulatorDep
from counseldesk.simulator.schemas import (
    MAX_CAPTION,
    CallbackIn,
    ContactIn,
    NewStudentIn,
    SimulatedStudentOut,
    StudentsOut,
    TextIn,
)
from counseldesk.staff.deps import CurrentAdmin, StaffAdmin
from counseldesk.web.deps import SessionDep

router = APIRouter(prefix="/simulator/api", include_in_schema=False)

T = TypeVar("T")
Json = dict[str, Any]

# Long polls end well before common proxy idle timeouts (often 30-60 s).
MAX_WAIT_SECONDS = 25.0
# Files the browser may show inline. Anything else (HTML, SVG, scripts...) is downloaded, never
# rendered on the dashboard's origin, where it could run as the logged-in administrator.
INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "audio/ogg", "audio/mpeg", "audio/mp4"}
)


@router.get("/students")
async def list_students(
    admin: StaffAdmin, emulator: EmulatorDep, session: SessionDep
) -> StudentsOut:
    listed = await service.list_simulated_students(session, await emulator.list_users())
    return StudentsOut(students=[SimulatedStudentOut.model_validate(s) for s in listed])


@router.post("/users", status_code=201)
async def create_student(body: NewStudentIn, admin: CurrentAdmin, emulator: EmulatorDep) -> Json:
    return await emulator.create_user(
        first_name=body.first_name, last_name=body.last_name, username=body.username
    )


@router.put("/users/{user_id}")
async def open_student(
    user_id: int, admin: CurrentAdmin, emulator: EmulatorDep, session: SessionDep
) -> Json:
    """Make sure the emulator knows this student (idempotent)."""
    return await service.do_open_in_emulator(session, emulator, user_id)


async def _unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T | None:
    """`work`'s result, or None when the browser goes away first (a closed tab, another student
    picked): a long poll nobody reads must not hold the emulator, or a server shutdown, for its
    whole wait."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.create_task(work)
    watcher = asyncio.create_task(disconnected())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        task.cancel()  # a no-op when it has finished
    if task not in done:
        await asyncio.wait({task})  # let it close its connection before ours closes
        return None
    return task.result()


@router.get("/users/{user_id}/chat", response_model=None)
async def chat_feed(
    request: Request,
    user_id: int,
    admin: StaffAdmin,
    emulator: EmulatorDep,
    after: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0)] = 0,
) -> Json | Response:
    """The chat after `after` (a last_seq from an earlier answer); with `wait`, a long poll that
    answers as soon as something changes, after at most 25 s."""
    work = emulator.chat_feed(user_id, after=after, wait=min(wait, MAX_WAIT_SECONDS))
    feed = await _unless_disconnected(request, work)
    if feed is None:
        return Response(status_code=204)
    return service.feed_for_browser(feed)


@router.post("/users/{user_id}/messages", status_code=201)
async def send_text(user_id: int, body: TextIn, admin: CurrentAdmin, emulator: EmulatorDep) -> Json:
    return await emulator.send_text(user_id, body.text)


@router.post("/users/{user_id}/contact", status_code=201)
async def share_contact(
    user_id: int, body: ContactIn, admin: CurrentAdmin, emulator: EmulatorDep
) -> Json:
    return await emulator.share_contact(user_id, body.phone_number)


@router.post("/users/{user_id}/callback", status_code=201)
async def press_button(
    user_id: int, body: CallbackIn, admin: CurrentAdmin, emulator: EmulatorDep
) -> Json:
    return await emulator.press_button(user_id, body.message_id, body.data)


@router.post("/users/{user_id}/media", status_code=201)
async def send_media(
    user_id: int,
    admin: CurrentAdmin,
    emulator: EmulatorDep,
    kind: Annotated[Literal["photo", "document", "voice"], Form()],
    file: Annotated[UploadFile, File()],
    caption: Annotated[str | None, Form(max_length=MAX_CAPTION)] = None,
) -> Json:
    return await emulator.send_media(
        user_id,
        kind=kind,
        content=await service.read_upload(file),
        file_name=file.filename or kind,
        mime_type=file.content_type or "application/octet-stream",
        caption=caption or None,
    )


@router.get("/files/{file_id}")
async def download_file(
    file_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,200}$")],
    admin: StaffAdmin,
    emulator: EmulatorDep,
) -> Response:
    found = await emulator.download(file_id)
    media_type = found.media_type.split(";", 1)[0].strip().lower()
    inline = media_type in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    if found.file_name:
        disposition += f"; filename*=UTF-8''{quote(found.file_name)}"
    return Response(
        found.content,
        media_type=media_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            # A file id always names the same bytes.
            "Cache-Control": "private, max-age=3600",
        },
    )

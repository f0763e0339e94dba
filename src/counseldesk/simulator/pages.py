"""The student simulator page: chat with the bot as a test student, in the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from counseldesk.staff.deps import PageAdmin
from counseldesk.web.deps import SettingsDep
from counseldesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/simulator")
async def simulator_page(request: Request, admin: PageAdmin, settings: SettingsDep) -> Response:
    # With a real bot token there is no emulator to drive: the page says so instead of failing.
    return render(request, "simulator.html", {"uses_emulator": settings.uses_emulator})

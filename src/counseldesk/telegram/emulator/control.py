"""The simulator's control API under /sim/: act as students, read their chats, bend the rules.

JSON in, JSON out. Mistakes answer 4xx with {"detail": "<reason>"} (404 unknown user or
message, 409 a conflict with the current state, 413 too large, 422 invalid input).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from counseldesk.telegram.emulator.botapi import canonical_method
from counseldesk.telegram.emulator.errors import SimError
from counseldesk.telegram.emulator.media import MediaKind
from counseldesk.telegram.emulator.params import MAX_UPLOAD_BYTES
from counseldesk.telegram.emulator.state import EmulatorState, UserAction


class _Strict(BaseModel):
    # A misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class NewUser(_Strict):
    id: int | None = Field(default=None, ge=1, description="Omitted: assigned from 7000000001 up.")
    first_name: str | None = Field(default=None, min_length=1, max_length=64)
    last_name: str | None = Field(default=None, max_length=64)
    username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,32}$")
    language_code: str | None = Field(default=None, max_length=35)
    is_premium: bool = False
    started: bool = Field(
        default=True,
        description="False: the user never opened the bot, so the bot may not write first "
        "(403) until the user sends something.",
    )


class TextIn(_Strict):
    text: str = Field(min_length=1, max_length=4096)
    reply_to_message_id: int | None = None


class ContactIn(_Strict):
    phone_number: str = Field(min_length=1, max_length=32)
    user_id: int | None = Field(default=None, description="Someone else's contact; default: own.")
    first_name: str | None = Field(default=None, max_length=64)
    last_name: str | None = Field(default=None, max_length=64)


class CallbackIn(_Strict):
    message_id: int
    data: str = Field(min_length=1)
    force: bool = Field(
        default=False, description="Press even if the message shows no such button now."
    )


class FaultIn(_Strict):
    method: str = Field(description='A Bot API method name (any case) or "*" for every method.')
    count: int = Field(default=1, ge=1, le=1_000_000)
    error_code: int | None = Field(default=None, ge=400, le=599)
    description: str | None = Field(default=None, min_length=1)
    retry_after: int | None = Field(default=None, ge=0, le=86_400)
    chat_id: int | None = None
    delay: float = Field(default=0.0, ge=0.0, le=120.0)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value == "*":
            return value
        method = canonical_method(value)
        if method is None:
            raise ValueError(f"the emulator has no Bot API method {value!r}")
        return method

    @model_validator(mode="after")
    def _does_something(self) -> FaultIn:
        if self.error_code is None and self.delay == 0:
            raise ValueError("a fault needs an error_code, a delay, or both")
        return self


class ConfigIn(_Strict):
    rate_limit_per_second: int | None = Field(default=None, ge=1)
    per_chat_rate_limit_per_second: int | None = Field(default=None, ge=1)
    webhook_max_attempts: int = Field(default=5, ge=1, le=50)
    webhook_retry_delay: float = Field(default=0.1, ge=0.0, le=10.0)
    webhook_timeout: float = Field(default=10.0, gt=0.0, le=120.0)


def _action(action: UserAction) -> dict[str, Any]:
    return {"update_id": action.update_id, "entry": action.entry.to_sim()}


def create_router(state: EmulatorState) -> APIRouter:
    router = APIRouter(prefix="/sim", tags=["simulator"])

    @router.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "bot": state.bot_user(),
            "webhook": state.queue.webhook_info(),
            "users": len(state.users),
            "config": state.config.to_sim(),
            "last_seq": state.last_seq,
            "last_call_seq": state.calls.last_seq,
        }

    @router.post("/users", status_code=201)
    async def create_user(body: NewUser) -> dict[str, Any]:
        user = state.create_user(
            user_id=body.id,
            first_name=body.first_name,
            last_name=body.last_name,
            username=body.username,
            language_code=body.language_code,
            is_premium=body.is_premium,
            started=body.started,
        )
        return user.to_sim()

    @router.get("/users")
    async def list_users() -> dict[str, Any]:
        return {"users": [user.to_sim() for user in state.users.values()]}

    @router.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, Any]:
        chat = state.chat(user_id)
        return {**chat.user.to_sim(), "reply_keyboard": chat.reply_keyboard}

    @router.post("/users/{user_id}/messages", status_code=201)
    async def send_text(user_id: int, body: TextIn) -> dict[str, Any]:
        return _action(
            state.user_sends_text(user_id, body.text, reply_to_message_id=body.reply_to_message_id)
        )

    @router.post("/users/{user_id}/contact", status_code=201)
    async def share_contact(user_id: int, body: ContactIn) -> dict[str, Any]:
        return _action(
            state.user_shares_contact(
                user_id,
                body.phone_number,
                contact_user_id=body.user_id,
                first_name=body.first_name,
                last_name=body.last_name,
            )
        )

    @router.post("/users/{user_id}/callback", status_code=201)
    async def press_button(user_id: int, body: CallbackIn) -> dict[str, Any]:
        return _action(
            state.user_presses_button(user_id, body.message_id, body.data, force=body.force)
        )

    @router.post("/users/{user_id}/media", status_code=201)
    async def send_media(
        user_id: int,
        kind: Annotated[MediaKind, Form()],
        file: Annotated[UploadFile, File()],
        caption: Annotated[str | None, Form(max_length=1024)] = None,
        duration: Annotated[int, Form(ge=0)] = 0,
    ) -> dict[str, Any]:
        state.user(user_id)  # an unknown user is a 404 before we read the upload
        content = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(content) > MAX_UPLOAD_BYTES:
            raise SimError(413, f"file is larger than {MAX_UPLOAD_BYTES} bytes")
        return _action(
            state.user_sends_media(
                user_id,
                kind,
                content,
                file_name=file.filename,
                mime_type=file.content_type,
                caption=caption or None,
                duration=duration,
            )
        )

    @router.get("/users/{user_id}/chat")
    async def chat_feed(
        user_id: int,
        after: Annotated[int, Query(ge=0)] = 0,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
    ) -> dict[str, Any]:
        if wait > 0:
            return await state.wait_chat_feed(user_id, after, wait)
        return state.chat_feed(user_id, after)

    @router.post("/users/{user_id}/block")
    async def block(user_id: int) -> dict[str, Any]:
        return {**_action(state.block(user_id)), "user": state.user(user_id).to_sim()}

    @router.post("/users/{user_id}/unblock")
    async def unblock(user_id: int) -> dict[str, Any]:
        return {**_action(state.unblock(user_id)), "user": state.user(user_id).to_sim()}

    @router.get("/updates")
    async def pending_updates() -> dict[str, Any]:
        return {"pending": list(state.queue.pending), "webhook": state.queue.webhook_info()}

    @router.get("/calls")
    async def calls(
        after: Annotated[int, Query(ge=0)] = 0,
        method: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
    ) -> dict[str, Any]:
        return {"calls": state.calls.after(after, method)[:limit], "last_seq": state.calls.last_seq}

    @router.delete("/calls")
    async def clear_calls() -> dict[str, Any]:
        return {"cleared": state.calls.clear()}

    @router.post("/faults", status_code=201)
    async def add_fault(body: FaultIn) -> dict[str, Any]:
        fault = state.faults.add(
            body.method,
            count=body.count,
            error_code=body.error_code,
            description=body.description,
            retry_after=body.retry_after,
            chat_id=body.chat_id,
            delay=body.delay,
        )
        return fault.to_sim()

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [fault.to_sim() for fault in state.faults.list()]}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        return {"cleared": state.faults.clear()}

    @router.get("/config")
    async def get_config() -> dict[str, Any]:
        return state.config.to_sim()

    @router.post("/config")
    async def set_config(body: ConfigIn) -> dict[str, Any]:
        # Only the fields sent change; an explicit null switches a rate limit off.
        for name in body.model_fields_set:
            setattr(state.config, name, getattr(body, name))
        return state.config.to_sim()

    @router.get("/files/{file_id}")
    async def download(file_id: str) -> Response:
        stored = state.files.get(file_id)
        if stored is None:
            raise SimError(404, f"no file {file_id!r}")
        headers = {}
        if stored.file_name:
            headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(stored.file_name)}"
        return Response(stored.content, media_type=stored.mime_type, headers=headers)

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True}

    return router

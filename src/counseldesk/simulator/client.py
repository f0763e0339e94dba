"""EmulatorClient: the dashboard's calls to the Telegram emulator's control API (/sim/...).

Every failure becomes a domain error the app's one handler turns into a JSON answer: the
emulator's own 4xx keep their status and reason (404 unknown user, 409 no such button...), an
emulator that cannot be reached is a 503 that says how to start it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

import httpx

from counseldesk.errors import CounseldeskError

# Every call but the chat feed's long poll is answered at once by an in-memory emulator.
CONNECT_TIMEOUT = 2.0
CALL_TIMEOUT = 5.0
# A long poll may take this much longer than the wait it asked for before we give up on it.
LONG_POLL_GRACE = 5.0


class EmulatorUnavailable(CounseldeskError):
    status_code = 503


class EmulatorRefused(CounseldeskError):
    """The emulator answered 4xx (or failed): its status and reason, passed on."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class EmulatorFile:
    content: bytes
    media_type: str
    file_name: str | None


@cache
def _tls_context() -> ssl.SSLContext:
    # The emulator speaks plain HTTP, so no TLS happens; handing httpx a ready context only spares
    # it loading the CA bundle (~20 ms) for every client it builds.
    return ssl.create_default_context()


def _reason(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):  # the emulator's request validation errors
        detail = "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return str(detail) if detail else f"the emulator answered HTTP {response.status_code}"


class EmulatorClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    async def _call(
        self, method: str, path: str, *, seconds: float = CALL_TIMEOUT, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await self.http.request(
                method, path, timeout=httpx.Timeout(seconds, connect=CONNECT_TIMEOUT), **kwargs
            )
        except httpx.TransportError as exc:
            raise EmulatorUnavailable(
                f"The Telegram emulator is not running: nothing answers at {self.base_url}. "
                'Start it with "counseldesk serve" (or "counseldesk emulator").'
            ) from exc
        if response.status_code >= 500:
            raise EmulatorRefused(502, f"The Telegram emulator failed: {_reason(response)}")
        if response.status_code >= 400:
            raise EmulatorRefused(response.status_code, _reason(response))
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = (await self._call(method, path, **kwargs)).json()
        return payload

    # --- users ---------------------------------------------------------------------------------

    async def list_users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = (await self._json("GET", "/sim/users"))["users"]
        return users

    async def get_user(self, user_id: int) -> dict[str, Any] | None:
        try:
            return await self._json("GET", f"/sim/users/{user_id}")
        except EmulatorRefused as exc:
            if exc.status_code == 404:
                return None
            raise

    async def create_user(
        self,
        *,
        user_id: int | None = None,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        body = {
            "id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }
        return await self._json("POST", "/sim/users", json=body)

    # --- what the student does -----------------------------------------------------------------

    async def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        return await self._json("POST", f"/sim/users/{user_id}/messages", json={"text": text})

    async def share_contact(self, user_id: int, phone_number: str) -> dict[str, Any]:
        body = {"phone_number": phone_number}
        return await self._json("POST", f"/sim/users/{user_id}/contact", json=body)

    async def press_button(self, user_id: int, message_id: int, data: str) -> dict[str, Any]:
        body = {"message_id": message_id, "data": data}
        return await self._json("POST", f"/sim/users/{user_id}/callback", json=body)

    async def send_media(
        self,
        user_id: int,
        *,
        kind: str,
        content: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None,
    ) -> dict[str, Any]:
        data = {"kind": kind, **({"caption": caption} if caption else {})}
        files = {"file": (file_name, content, mime_type)}
        # Uploads travel over loopback but may be tens of megabytes: give them the long timeout.
        return await self._json(
            "POST",
            f"/sim/users/{user_id}/media",
            data=data,
            files=files,
            seconds=CALL_TIMEOUT + LONG_POLL_GRACE,
        )

    # --- what the student sees -----------------------------------------------------------------

    async def chat_feed(self, user_id: int, *, after: int, wait: float) -> dict[str, Any]:
        """The chat's entries newer than `after`; waits up to `wait` seconds for one to come."""
        params = {"after": after, "wait": wait}
        return await self._json(
            "GET", f"/sim/users/{user_id}/chat", params=params, seconds=wait + LONG_POLL_GRACE
        )

    async def download(self, file_id: str) -> EmulatorFile:
        response = await self._call("GET", f"/sim/files/{file_id}")
        return EmulatorFile(
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            file_name=_file_name(response.headers.get("content-disposition", "")),
        )


def _file_name(disposition: str) -> str | None:
    # The emulator writes `inline; filename*=UTF-8''<percent-encoded name>`.
    marker = "filename*=UTF-8''"
    if marker not in disposition:
        return None
    return unquote(disposition.split(marker, 1)[1].split(";", 1)[0]) or None


@asynccontextmanager
async def open_emulator_client(base_url: str) -> AsyncIterator[EmulatorClient]:
    """A client for one request. trust_env=False: a proxy configured for the outside world must
    not get between us and an emulator on loopback."""
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, verify=_tls_context()) as http:
        yield EmulatorClient(http)

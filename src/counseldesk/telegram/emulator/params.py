"""Bot API request parameters, whichever way they arrive.

Telegram accepts a method's parameters in the query string, as urlencoded or multipart form data,
or as a JSON body. aiogram's AiohttpSession always sends multipart/form-data: strings as they are,
numbers and booleans JSON-encoded ("42", "true"), objects such as reply_markup as JSON strings,
uploads as file parts referenced by "attach://<name>" (and it leaves out empty values entirely).
`Params` hides those differences behind typed getters that coerce the way Telegram does.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import Message, Scope

from counseldesk.telegram.emulator.errors import BotApiError, bad_request

# Telegram's own limit for files a bot uploads.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A file that came in the request body."""

    filename: str
    content: bytes
    content_type: str | None


class Params:
    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None):
        self.values = values
        self.uploads = uploads or {}

    def describe(self) -> dict[str, Any]:
        """The parameters as the call log shows them: JSON-looking strings decoded, uploads
        summarised (never their bytes)."""
        shown: dict[str, Any] = {}
        for name, value in self.values.items():
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            shown[name] = value
        for name, upload in self.uploads.items():
            shown[name] = {
                "upload": upload.filename,
                "size": len(upload.content),
                "content_type": upload.content_type,
            }
        return shown

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise bad_request(f"can't parse {name}: a string was expected")

    def get_int(self, name: str, *, error: str | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(error or f"invalid {name} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(error or f"invalid {name} specified") from None

    def get_float(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return False

    def get_json(self, name: str, *, error: str) -> Any:
        """A JSON object/array parameter (sent as a JSON string in forms, natively in JSON)."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(error) from None
        return value

    def get_input_file(self, name: str) -> Upload | str | None:
        """An InputFile parameter: an upload (sent directly, or as attach://<part>) or a string
        (a file_id or an HTTP URL)."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.get_str(name)
        if value is None or value == "":
            return None
        if value.startswith("attach://"):
            upload = self.uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request(f"file for {name} not found in the request")
            return upload
        return value


async def _from_form(form: FormData) -> Params:
    values: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    try:
        for name, item in form.multi_items():
            if isinstance(item, UploadFile):
                content = await item.read()
                if len(content) > MAX_UPLOAD_BYTES:
                    raise BotApiError(413, "Request Entity Too Large")
                uploads[name] = Upload(
                    filename=item.filename or name,
                    content=content,
                    content_type=item.content_type,
                )
            else:
                values[name] = item
    finally:
        await form.close()
    return Params(values, uploads)


async def read_params(request: Request) -> Params:
    """Parameters from the query string and the body (the body wins on a clash)."""
    query: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if not body.strip():
            return Params(query)
        try:
            data = json.loads(body)
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(data, dict):
            raise bad_request("JSON object expected")
        return Params({**query, **data})
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
        except BotApiError:
            raise
        except Exception as exc:  # the multipart parser's own errors: malformed body
            raise bad_request(f"can't parse request body: {exc}") from None
        parsed = await _from_form(form)
        return Params({**query, **parsed.values}, parsed.uploads)
    return Params(query)


async def params_from_body(content_type: str, body: bytes) -> Params:
    """Parse a body that did not arrive as a request to us: a webhook's answer, which may carry a
    Bot API call (aiogram writes it as multipart, other frameworks as JSON)."""
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": [(b"content-type", content_type.encode("latin-1"))],
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return await read_params(Request(scope, receive))

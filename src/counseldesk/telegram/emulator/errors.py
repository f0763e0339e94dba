"""The two ways the emulator says no: as Telegram would (Bot API), as a test tool (control API)."""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    """A Bot API failure, rendered byte-for-byte the way Telegram renders it, so the bot's error
    handling (aiogram's exception mapping) is exercised exactly as in production."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> BotApiError:
    return BotApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(
        429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
    )


def not_found() -> BotApiError:
    return BotApiError(404, "Not Found")


def unauthorized() -> BotApiError:
    return BotApiError(401, "Unauthorized")


class SimError(Exception):
    """A bad request to the simulator's control API: an HTTP status and a reason a person (or a
    failing test) can act on."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail

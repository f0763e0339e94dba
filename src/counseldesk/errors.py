"""Domain errors. Each carries the HTTP status the web maps it to; the bot maps the same errors
to a friendly reply. Services raise these; handlers never build their own 404s."""

from __future__ import annotations


class CounseldeskError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CounseldeskError):
    status_code = 404


class Conflict(CounseldeskError):
    status_code = 409


class InvalidInput(CounseldeskError):
    status_code = 422


class NotAuthenticated(CounseldeskError):
    status_code = 401


class PermissionDenied(CounseldeskError):
    status_code = 403


class TooManyRequests(CounseldeskError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def storable_text(text: str, what: str) -> str:
    """`text` unchanged, or InvalidInput if PostgreSQL cannot hold it: a text value cannot
    contain the NUL character, nor half of a UTF-16 pair (JSON's "\\ud800" alone), and sending
    either fails the whole statement."""
    if "\x00" in text:
        raise InvalidInput(f"{what} cannot contain the NUL character (\\u0000).")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} contains a character that is not valid Unicode.") from None
    return text

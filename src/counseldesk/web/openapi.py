"""How the JSON API's error answers are described in the OpenAPI schema, for every feature."""

from __future__ import annotations

from typing import Any

from counseldesk.staff.schemas import ErrorOut

# FastAPI's `responses=` argument: status -> its description, model and example.
Responses = dict[int | str, dict[str, Any]]


def error_response(status: int, description: str, detail: Any) -> Responses:
    """An error answer `{"detail": ...}` with `status`, described and with an example."""
    return {
        status: {
            "model": ErrorOut,
            "description": description,
            "content": {"application/json": {"example": {"detail": detail}}},
        }
    }

"""How the JSON API's error answers are described in the OpenAPI schema, for every feature."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from counseldesk.staff.schemas import ErrorOut

# FastAPI's `responses=` argument: status -> its description, model and example.
Responses = dict[int | str, dict[str, Any]]


class FieldError(BaseModel):
    """One invalid parameter or body field: where it is and what is wrong with it."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class InvalidOut(BaseModel):
    """A 422: the parameters or body fields that failed validation, one entry each, or, for a
    rule that no single field breaks (a damaged cursor, a slot already taken), one sentence."""

    detail: list[FieldError] | str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {
                            "loc": ["query", "limit"],
                            "msg": "Input should be less than or equal to 100",
                            "type": "less_than_equal",
                        }
                    ]
                },
                {"detail": "cursor is damaged or was altered; start again from page 1."},
            ]
        }
    )


def error_response(status: int, description: str, detail: Any) -> Responses:
    """An error answer `{"detail": ...}` with `status`, described and with an example."""
    return {
        status: {
            "model": InvalidOut if status == 422 else ErrorOut,
            "description": description,
            "content": {"application/json": {"example": {"detail": detail}}},
        }
    }

"""Shapes of the staff JSON API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from counseldesk.staff.models import Role
from counseldesk.staff.service import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

_COUNSELOR_EXAMPLE: JsonDict = {
    "id": 7,
    "email": "wanjiku@university.ac.ke",
    "full_name": "Wanjiku Kamau",
    "role": "counselor",
    "is_active": True,
}


class LoginIn(BaseModel):
    # A plain string, not EmailStr: a malformed address must get the same 401 as a wrong one.
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "wanjiku@university.ac.ke", "password": "correct horse"}]
        }
    )


class CounselorOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_COUNSELOR_EXAMPLE]}
    )


class LoginOut(BaseModel):
    counselor: CounselorOut
    csrf_token: str = Field(
        description="Send it back in the X-CSRF-Token header of every POST, PUT, PATCH and "
        "DELETE request of this session."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "counselor": _COUNSELOR_EXAMPLE,
                    "csrf_token": "pF3c0kq7i1wqjQ3Zl8X2yq5bq0w0m2r9lQ4yq8Yk9ZE",
                }
            ]
        }
    )


class PasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"current_password": "correct horse", "new_password": "battery staple"}]
        }
    )


class ErrorOut(BaseModel):
    detail: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "Not logged in."}]})

"""Shapes of the simulator's JSON API (what the page's script sends and gets)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Telegram's limits, checked here so that a mistake gets the dashboard's 422 with a clear field.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewStudentIn(_In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: str = Field(min_length=1, max_length=64)
    last_name: str | None = Field(default=None, max_length=64)
    username: str | None = Field(default=None, pattern=r"^@?[A-Za-z0-9_]{1,32}$")

    @field_validator("last_name", "username", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("username")
    @classmethod
    def _without_at(cls, value: str | None) -> str | None:
        return value.removeprefix("@") if value else value


class TextIn(_In):
    text: str = Field(min_length=1, max_length=MAX_TEXT)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a message needs some text")
        return value


class ContactIn(_In):
    phone_number: str = Field(min_length=1, max_length=32)


class CallbackIn(_In):
    message_id: int = Field(ge=1)
    data: str = Field(min_length=1, max_length=MAX_CALLBACK_DATA)


class SimulatedStudentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    telegram_user_id: int
    name: str
    username: str | None
    in_emulator: bool
    registered: bool
    admission_no: str | None
    year_of_study: int | None


class StudentsOut(BaseModel):
    students: list[SimulatedStudentOut]

"""Filters for routers that serve registered students only (and the fallbacks for strangers)."""

from __future__ import annotations

from aiogram.types import TelegramObject

from counseldesk.students.models import Student


def is_registered(event: TelegramObject, student: Student | None = None) -> bool:
    """Features are for registered students; everyone else falls through to "register first"."""
    return student is not None


def is_stranger(event: TelegramObject, student: Student | None = None) -> bool:
    return student is None

"""Per-update student context: record Telegram activity, load the student if registered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.students import service


class StudentContextMiddleware(BaseMiddleware):
    """Handlers receive `student` (a Student or None) and `lang` (the student's language)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        student = None
        if user is not None and not user.is_bot:
            await service.do_record_activity(
                session,
                telegram_user_id=user.id,
                username=user.username,
                first_name=user.first_name,
                last_name=user.last_name,
                language_code=user.language_code,
            )
            student = await service.get_by_telegram_id(session, user.id)
        data["student"] = student
        data["lang"] = student.language_code if student else (user.language_code if user else None)
        return await handler(event, data)

"""The bot's one unit of work per update: open a transaction, skip repeats, commit, then reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Chat, TelegramObject, Update, User
from sqlalchemy.dialects.postgresql import insert

from counseldesk.db.engine import Database
from counseldesk.telegram.models import ProcessedUpdate
from counseldesk.telegram.replies import Replies
from counseldesk.telegram.storage import current_session

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UnitOfWorkMiddleware(BaseMiddleware):
    """Outer middleware on updates. Handlers receive `session` and `replies`.

    The update id is recorded in the same transaction as the handling, so an update Telegram
    delivers twice (a webhook retry, a restart mid-batch) changes nothing the second time, and an
    update whose handling failed is handled again when it comes back.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        bot: Bot = data["bot"]
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("event_from_user")
        replies = Replies(chat.id if chat else user.id if user else 0)

        async with self.db.unit_of_work() as session:
            token = current_session.set(session)
            try:
                fresh = await session.scalar(
                    insert(ProcessedUpdate)
                    .values(update_id=event.update_id)
                    .on_conflict_do_nothing()
                    .returning(ProcessedUpdate.update_id)
                )
                if fresh is None:
                    log.info("update %s was handled before; skipped", event.update_id)
                    return UNHANDLED
                data["session"] = session
                data["replies"] = replies
                result = await handler(event, data)
            finally:
                current_session.reset(token)
        await replies.flush(bot)
        return result

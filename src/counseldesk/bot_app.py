"""Assembling the bot: dispatcher, storage, middlewares, every feature's router."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand, ErrorEvent

from counseldesk.appointments import bot as appointments_bot
from counseldesk.i18n import t
from counseldesk.runtime import Runtime
from counseldesk.students import bot as students_bot
from counseldesk.students.bot_middleware import StudentContextMiddleware
from counseldesk.support import bot as support_bot
from counseldesk.support.bot_flood import (
    DEFAULT_RULES,
    FloodControlMiddleware,
    FloodRule,
    build_flood_limiter,
)
from counseldesk.telegram.middlewares import UnitOfWorkMiddleware
from counseldesk.telegram.storage import PostgresStorage

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand(command="start", description="Register or start over"),
    BotCommand(command="menu", description="Main menu"),
    BotCommand(command="help", description="How this bot works"),
    BotCommand(command="cancel", description="Stop what you are doing"),
]


def _storage(runtime: Runtime) -> BaseStorage:
    if runtime.redis is not None:
        return RedisStorage(runtime.redis)
    return PostgresStorage(runtime.db)


def create_dispatcher(
    runtime: Runtime, *, flood_rules: Sequence[FloodRule] = DEFAULT_RULES
) -> Dispatcher:
    dispatcher = Dispatcher(storage=_storage(runtime), settings=runtime.settings)
    # Order matters: the unit of work opens the session the student context then uses, and
    # flood control (on messages, after both) queues its notice in that unit of work.
    dispatcher.update.outer_middleware(UnitOfWorkMiddleware(runtime.db))
    dispatcher.update.outer_middleware(StudentContextMiddleware())
    if flood_rules:  # none: no flood control (tests that type at machine speed)
        dispatcher.message.outer_middleware(
            FloodControlMiddleware(build_flood_limiter(runtime.redis, flood_rules))
        )
    # Appointments first: it takes typed messages only in its own booking states. Support next:
    # it takes only registered students' typed messages and its own buttons, outside
    # registration and commands; the students router ends with the catch-all.
    dispatcher.include_router(appointments_bot.create_router())
    dispatcher.include_router(support_bot.create_router())
    dispatcher.include_router(students_bot.create_router())
    dispatcher.errors.register(_on_error)
    return dispatcher


async def _on_error(event: ErrorEvent, bot: Bot) -> bool:
    """Whatever failed was rolled back; tell the student instead of leaving them waiting."""
    log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    chat_id = None
    if event.update.message is not None:
        chat_id = event.update.message.chat.id
    elif event.update.callback_query is not None:
        chat_id = event.update.callback_query.from_user.id
    if chat_id is not None:
        try:
            await bot.send_message(chat_id, t("common.error"))
        except Exception:  # the reply is a courtesy; the failure is logged above
            log.warning("could not tell chat %s about the failure", chat_id)
    return True


async def configure_bot(bot: Bot) -> None:
    """Set the command list shown in Telegram's menu button."""
    await bot.set_my_commands(COMMANDS)

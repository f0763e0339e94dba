"""Housekeeping of the bot's own tables."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.telegram.models import BotState, ProcessedUpdate

# Telegram keeps undelivered updates for 24 hours; a week of ids covers every possible repeat.
PROCESSED_UPDATES_KEPT = timedelta(days=7)
# A conversation state untouched this long belongs to someone who walked away.
BOT_STATES_KEPT = timedelta(days=30)


async def prune_processed_updates(session: AsyncSession) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(
            ProcessedUpdate.received_at < func.now() - PROCESSED_UPDATES_KEPT
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_bot_states(session: AsyncSession) -> int:
    result = await session.execute(
        delete(BotState).where(BotState.updated_at < func.now() - BOT_STATES_KEPT)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

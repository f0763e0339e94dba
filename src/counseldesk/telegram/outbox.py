"""Putting messages for students into the outbox (the `notifications` table).

Call these inside the unit of work that makes the change the message is about: the row commits
with the change or not at all, and the worker sends it after commit. `pg_notify` inside the same
transaction is delivered by PostgreSQL at commit, which wakes the worker at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.telegram.models import Notification, NotificationStatus

OUTBOX_CHANNEL = "counseldesk_outbox"
# Telegram's own limit for one message; longer texts are split before they get here.
MAX_TEXT = 4096


async def do_enqueue(
    session: AsyncSession,
    *,
    kind: str,
    telegram_user_id: int,
    text: str,
    reply_markup: dict[str, Any] | None = None,
    scheduled_for: datetime | None = None,
    expires_at: datetime | None = None,
    ref_key: str | None = None,
    ref: dict[str, Any] | None = None,
) -> Notification:
    """Queue one HTML message to a student's chat, due at `scheduled_for` (default now) and not
    sent at all once `expires_at` has passed. `ref` travels with live status events."""
    if not text or len(text) > MAX_TEXT:
        raise ValueError(f"a notification text has 1 to {MAX_TEXT} characters")
    payload: dict[str, Any] = {"text": text}
    if reply_markup is not None:
        payload["reply_markup"] = reply_markup
    if ref is not None:
        payload["ref"] = ref
    notification = Notification(
        kind=kind,
        telegram_user_id=telegram_user_id,
        payload=payload,
        ref_key=ref_key,
        expires_at=expires_at,
    )
    if scheduled_for is not None:
        notification.scheduled_for = scheduled_for
    session.add(notification)
    await session.flush()
    await session.execute(select(func.pg_notify(OUTBOX_CHANNEL, str(notification.id))))
    return notification


async def do_cancel(session: AsyncSession, ref_key: str) -> int:
    """Cancel the pending notifications filed under `ref_key` (a moved or cancelled reminder)."""
    result = await session.execute(
        update(Notification)
        .where(Notification.ref_key == ref_key, Notification.status == NotificationStatus.PENDING)
        .values(status=NotificationStatus.CANCELLED)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""The outbox worker's statements on the `notifications` table, one per state change.

Each function runs inside a unit of work the worker opens (they execute, never commit) and emits
a `notification.updated` live event for every row it changes, published after that commit.

A claim stamps `claimed_at`; every later change of a claimed row requires the same `claimed_at`,
so a worker that lost its claim (its lease expired and the sweep decided, or another worker
claimed the row again) can never overwrite what happened since.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.realtime.events import emit
from counseldesk.telegram.models import Notification, NotificationStatus

EVENT = "notification.updated"
UNREACHABLE_ERROR = "student unreachable"
INTERRUPTED_ERROR = "interrupted while sending; delivery unknown"
EXPIRED_ERROR = "expired before it could be sent"
# The periodic jobs in counseldesk.worker use 7_001 and up.
SWEEP_LOCK_KEY = 7_101

# Written out, not bound: the planner matches a partial index's predicate only against a
# constant, and asyncpg's prepared statements turn a bound value into a parameter that a generic
# plan cannot prove equal to 'pending' (ix_notifications_due would silently stop being used).
_PENDING = text("notifications.status = 'pending'")
_SENDING = text("notifications.status = 'sending'")

# Which of these Telegram users are known to be unreachable (supplied by the composition layer,
# since telegram/ does not know about students).
FindUnreachable = Callable[[AsyncSession, Collection[int]], Awaitable[set[int]]]


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    kind: str
    telegram_user_id: int
    payload: dict[str, Any]
    attempts: int  # including this one
    claimed_at: datetime  # the claim's fencing token

    @property
    def ref(self) -> Any:
        return self.payload.get("ref")


def emit_update(
    session: AsyncSession,
    *,
    notification_id: int,
    status: NotificationStatus,
    kind: str,
    ref: Any,
    error: str | None = None,
) -> None:
    emit(
        session,
        EVENT,
        {
            "notification_id": notification_id,
            "status": status.value,
            "kind": kind,
            "ref": ref,
            "error": error,
        },
    )


def due_rows(
    limit: int, now: datetime | None = None
) -> Select[tuple[int, str, int, dict[str, Any], datetime | None]]:
    """The claim's SELECT: due pending rows, oldest first, skipping rows other workers hold.
    Served by the partial index ix_notifications_due (a test holds it to that). `now` replaces
    the database's clock (tests that move time)."""
    return (
        select(
            Notification.id,
            Notification.kind,
            Notification.telegram_user_id,
            Notification.payload,
            Notification.expires_at,
        )
        .where(_PENDING, Notification.scheduled_for <= (func.now() if now is None else now))
        .order_by(Notification.scheduled_for, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def claim_due(
    session: AsyncSession,
    *,
    limit: int,
    find_unreachable: FindUnreachable | None = None,
    now: datetime | None = None,
) -> list[ClaimedRow]:
    """Lock up to `limit` due pending rows (skipping rows other workers hold) and mark them
    SENDING. Rows for students known to be unreachable end FAILED here, unsent and uncounted;
    rows past their `expires_at` end CANCELLED, unsent."""
    due = (await session.execute(due_rows(limit, now))).all()
    if not due:
        return []
    clock = now or await session.scalar(select(func.now()))
    expired = [row for row in due if row.expires_at is not None and row.expires_at <= clock]
    if expired:
        await _settle_unsent(session, expired, NotificationStatus.CANCELLED, EXPIRED_ERROR)
        due = [row for row in due if row not in expired]
    unreachable: set[int] = set()
    if find_unreachable is not None:
        unreachable = await find_unreachable(session, {row.telegram_user_id for row in due})
    skipped = [row for row in due if row.telegram_user_id in unreachable]
    if skipped:
        await _settle_unsent(session, skipped, NotificationStatus.FAILED, UNREACHABLE_ERROR)
    to_send = {row.id: row for row in due if row.telegram_user_id not in unreachable}
    if not to_send:
        return []
    stamped = (
        await session.execute(
            update(Notification)
            .where(Notification.id.in_(list(to_send)))
            .values(
                status=NotificationStatus.SENDING,
                claimed_at=func.now(),
                attempts=Notification.attempts + 1,
            )
            .returning(Notification.id, Notification.attempts, Notification.claimed_at)
        )
    ).all()
    by_id = {row.id: row for row in stamped}
    claimed = []
    for row in due:  # keep the claim's order (due time, then id)
        if row.id not in by_id:
            continue
        stamp = by_id[row.id]
        assert stamp.claimed_at is not None
        claimed.append(
            ClaimedRow(
                id=row.id,
                kind=row.kind,
                telegram_user_id=row.telegram_user_id,
                payload=row.payload,
                attempts=stamp.attempts,
                claimed_at=stamp.claimed_at,
            )
        )
        emit_update(
            session,
            notification_id=row.id,
            status=NotificationStatus.SENDING,
            kind=row.kind,
            ref=row.payload.get("ref"),
        )
    return claimed


async def _settle_unsent(
    session: AsyncSession, rows: Sequence[Any], status: NotificationStatus, error: str
) -> None:
    """End locked, unclaimed rows without sending them (their lock is held by this claim)."""
    await session.execute(
        update(Notification)
        .where(Notification.id.in_([row.id for row in rows]))
        .values(status=status, last_error=error)
    )
    for row in rows:
        emit_update(
            session,
            notification_id=row.id,
            status=status,
            kind=row.kind,
            ref=row.payload.get("ref"),
            error=error,
        )


async def _move_claimed(
    session: AsyncSession,
    row: ClaimedRow,
    status: NotificationStatus,
    *,
    only_while_sending: bool = False,
    error: str | None = None,
    **values: Any,
) -> bool:
    """Set one claimed row's new state if this worker's claim still stands; emit the change."""
    stmt = update(Notification).where(
        Notification.id == row.id, Notification.claimed_at == row.claimed_at
    )
    if only_while_sending:
        stmt = stmt.where(_SENDING)
    result = await session.execute(stmt.values(status=status, **values).returning(Notification.id))
    changed = result.first() is not None
    if changed:
        emit_update(
            session, notification_id=row.id, status=status, kind=row.kind, ref=row.ref, error=error
        )
    return changed


async def mark_sent(session: AsyncSession, row: ClaimedRow, telegram_message_id: int) -> bool:
    """Telegram accepted the message. This is the truth even if the sweep already gave up on the
    row (a send slower than the lease), so only the claim stamp is checked, not the status."""
    return await _move_claimed(
        session,
        row,
        NotificationStatus.SENT,
        sent_at=func.now(),
        telegram_message_id=telegram_message_id,
        last_error=None,
    )


async def mark_retry(session: AsyncSession, row: ClaimedRow, *, delay: float, error: str) -> bool:
    """Not delivered; pending again, due after `delay` seconds."""
    return await _move_claimed(
        session,
        row,
        NotificationStatus.PENDING,
        only_while_sending=True,
        error=error,
        scheduled_for=func.now() + timedelta(seconds=delay),
        claimed_at=None,
        last_error=error,
    )


async def mark_failed(session: AsyncSession, rows: Sequence[ClaimedRow], error: str) -> int:
    """Give up on claimed rows: FAILED with `error`, for a counselor to see (and retry)."""
    if not rows:
        return 0
    changed = set(
        (
            await session.scalars(
                update(Notification)
                .where(
                    Notification.id.in_([row.id for row in rows]),
                    _SENDING,
                    Notification.claimed_at == rows[0].claimed_at,
                )
                .values(status=NotificationStatus.FAILED, last_error=error)
                .returning(Notification.id)
            )
        ).all()
    )
    for row in rows:
        if row.id in changed:
            emit_update(
                session,
                notification_id=row.id,
                status=NotificationStatus.FAILED,
                kind=row.kind,
                ref=row.ref,
                error=error,
            )
    return len(changed)


async def release(session: AsyncSession, rows: Sequence[ClaimedRow]) -> int:
    """Hand claimed rows that were never handed to Telegram back to the queue, as they were: the
    attempt the claim counted did not happen. Their due time is kept, so they go first."""
    if not rows:
        return 0
    changed = set(
        (
            await session.scalars(
                update(Notification)
                .where(
                    Notification.id.in_([row.id for row in rows]),
                    _SENDING,
                    Notification.claimed_at == rows[0].claimed_at,
                )
                .values(
                    status=NotificationStatus.PENDING,
                    attempts=Notification.attempts - 1,
                    claimed_at=None,
                )
                .returning(Notification.id)
            )
        ).all()
    )
    for row in rows:
        if row.id in changed:
            emit_update(
                session,
                notification_id=row.id,
                status=NotificationStatus.PENDING,
                kind=row.kind,
                ref=row.ref,
            )
    return len(changed)


async def sweep_interrupted(session: AsyncSession, *, lease: float) -> int:
    """Rows SENDING for longer than the lease belong to a worker that died mid-send: Telegram
    may or may not have delivered them, so they end FAILED, visibly, and are never re-sent.

    One worker at a time sweeps (the others skip the round): no index serves status 'sending',
    so this is a scan of the table, which several workers should not each repeat.
    """
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY))):
        return 0
    swept = (
        await session.execute(
            update(Notification)
            .where(_SENDING, Notification.claimed_at < func.now() - timedelta(seconds=lease))
            .values(status=NotificationStatus.FAILED, last_error=INTERRUPTED_ERROR)
            .returning(Notification.id, Notification.kind, Notification.payload["ref"])
        )
    ).all()
    for notification_id, kind, ref in swept:
        emit_update(
            session,
            notification_id=notification_id,
            status=NotificationStatus.FAILED,
            kind=kind,
            ref=ref,
            error=INTERRUPTED_ERROR,
        )
    return len(swept)


async def seconds_until_next_due(session: AsyncSession) -> float | None:
    """How long until the earliest pending row is due (negative: overdue); None: none pending.
    Measured on the database's clock, the one `scheduled_for` is compared with."""
    value = await session.scalar(
        select(func.extract("epoch", func.min(Notification.scheduled_for) - func.now())).where(
            _PENDING
        )
    )
    return None if value is None else float(value)

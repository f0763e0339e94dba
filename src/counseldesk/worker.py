"""The worker: the outbox (messages to students) and periodic maintenance jobs.

The outbox worker drains `notifications` with FOR UPDATE SKIP LOCKED, so any number of workers
share it. Each periodic job runs under a PostgreSQL advisory lock taken inside its transaction,
so exactly one worker does a given job at a time.

This module is also where the outbox meets the features it must not import: it hands the
outbox the students service's reachability rules as hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.runtime import Runtime
from counseldesk.staff.maintenance import prune_expired_staff_sessions
from counseldesk.students.service import do_mark_unreachable, get_unreachable_ids
from counseldesk.support.maintenance import check_activity_days, compact_activity_days
from counseldesk.telegram.bot_factory import create_bot
from counseldesk.telegram.maintenance import prune_bot_states, prune_processed_updates
from counseldesk.telegram.outbox_worker import OutboxWorker
from counseldesk.telegram.rate_limit import create_rate_limiter

log = logging.getLogger(__name__)

Job = Callable[[AsyncSession], Awaitable[int]]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    lock_key: int
    every_seconds: float
    run: Job


JOBS = [
    PeriodicJob("prune-processed-updates", 7_001, 3600, prune_processed_updates),
    PeriodicJob("prune-bot-states", 7_002, 3600, prune_bot_states),
    PeriodicJob("prune-staff-sessions", 7_003, 600, prune_expired_staff_sessions),
    # Keeps the inbox's counts (page=N) to about one row per view and day or period.
    PeriodicJob("compact-activity-days", 7_004, 60, compact_activity_days),
    # Tells the operator when those counts no longer add up to the tickets.
    PeriodicJob("check-activity-days", 7_005, 3600, check_activity_days),
]


async def run_job_once(runtime: Runtime, job: PeriodicJob) -> int | None:
    """Run the job if no other worker holds its lock; None when another worker had it."""
    async with runtime.db.unit_of_work() as session:
        locked = await session.scalar(select(func.pg_try_advisory_xact_lock(job.lock_key)))
        if not locked:
            return None
        return await job.run(session)


def create_outbox_worker(runtime: Runtime, bot: Bot) -> OutboxWorker:
    """The outbox worker as production runs it: the configured rate, shared through Redis when
    there is one (keyed by the bot, whose flood limit it is), students' reachability as hooks."""
    settings = runtime.settings
    limiter = create_rate_limiter(
        settings.outbox_rate_per_second, runtime.redis, key=f"counseldesk:outbox-rate:{bot.id}"
    )
    return OutboxWorker(
        runtime.db,
        bot,
        limiter=limiter,
        on_unreachable=do_mark_unreachable,
        find_unreachable=get_unreachable_ids,
        batch_size=settings.outbox_batch_size,
    )


async def run_periodic_jobs(runtime: Runtime, stop: asyncio.Event) -> None:
    log.info("periodic jobs: %s", ", ".join(job.name for job in JOBS))
    next_run = dict.fromkeys((job.name for job in JOBS), 0.0)
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        now = loop.time()
        for job in JOBS:
            if now < next_run[job.name]:
                continue
            next_run[job.name] = now + job.every_seconds
            try:
                done = await run_job_once(runtime, job)
            except Exception:
                log.exception("job %s failed; it runs again in %ss", job.name, job.every_seconds)
                continue
            if done:
                log.info("job %s: %d rows", job.name, done)
        wait = max(min(next_run.values()) - loop.time(), 0.5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The outbox and the periodic jobs until `stop` is set."""
    # From the runtime's settings as they are now: `serve` starts the emulator first and records
    # the port it got there.
    bot = create_bot(runtime.settings)
    outbox = create_outbox_worker(runtime, bot)
    log.info("worker started")
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(outbox.run(stop), name="outbox")
            group.create_task(run_periodic_jobs(runtime, stop), name="periodic-jobs")
    finally:
        await bot.session.close()
        log.info("worker stopped")

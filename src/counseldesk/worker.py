"""The worker: periodic maintenance jobs (and, as features land, the outbox).

Each job runs under a PostgreSQL advisory lock taken inside its transaction, so any number of
workers may run and exactly one of them does a given job at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.runtime import Runtime
from counseldesk.staff.maintenance import prune_expired_staff_sessions
from counseldesk.telegram.maintenance import prune_bot_states, prune_processed_updates

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
]


async def run_job_once(runtime: Runtime, job: PeriodicJob) -> int | None:
    """Run the job if no other worker holds its lock; None when another worker had it."""
    async with runtime.db.unit_of_work() as session:
        locked = await session.scalar(select(func.pg_try_advisory_xact_lock(job.lock_key)))
        if not locked:
            return None
        return await job.run(session)


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    log.info("worker started with %d periodic jobs", len(JOBS))
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
    log.info("worker stopped")

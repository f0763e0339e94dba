"""Spotting crisis or self-harm wording in what a student writes.

A match never blocks or changes the student's message: it raises the ticket to urgent, alerts
counselors and sends the student the office's emergency contacts. Terms are admin-editable
(`support_crisis_terms`); the migration seeds a conservative starting list.
"""

from __future__ import annotations

import re
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.support.models import CrisisTerm

# The list changes rarely and is read on every student message: cache it briefly per process.
_CACHE_SECONDS = 30.0
_cache: tuple[float, re.Pattern[str] | None] | None = None


def compile_terms(terms: list[str]) -> re.Pattern[str] | None:
    cleaned = sorted(
        {" ".join(t.lower().split()) for t in terms if t.strip()}, key=len, reverse=True
    )
    if not cleaned:
        return None
    # Word boundaries, so "die" does not fire on "diet"; flexible whitespace inside phrases.
    alternatives = [r"\s+".join(map(re.escape, term.split())) for term in cleaned]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


async def _pattern(session: AsyncSession) -> re.Pattern[str] | None:
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    terms = list((await session.scalars(select(CrisisTerm.term))).all())
    pattern = compile_terms(terms)
    _cache = (now, pattern)
    return pattern


def forget_cached_terms() -> None:
    """Call after editing the list, so the next message sees it."""
    global _cache
    _cache = None


async def find_crisis_wording(session: AsyncSession, text: str | None) -> str | None:
    """The first crisis term in `text`, or None."""
    if not text:
        return None
    pattern = await _pattern(session)
    if pattern is None:
        return None
    match = pattern.search(text)
    return match.group(0) if match else None

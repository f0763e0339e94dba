"""Paging at any depth, shared by every list the dashboard pages through.

- `Page`: what a list endpoint returns (items, page, limit, total, whether the total is an
  estimate, has_next, next_cursor).
- Cursors: base64url(JSON + checksum). A cursor grants nothing — it only says where to continue —
  so it needs no secret; the checksum turns a damaged or hand-edited cursor into a clear 422
  instead of a silently different page. The fingerprint ties it to the filters it came with.
- Totals: exact up to EXACT_COUNT_LIMIT rows, beyond that the planner's estimate (`estimated_rows`,
  cached for ESTIMATE_TTL_SECONDS).
- `execute_rows` runs a prepared read past the ORM layer; `literal_int` writes a LIMIT into the
  SQL so generic plans know the page is small.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Row, Select, bindparam, literal_column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from counseldesk.db.records import Source, fetch_records
from counseldesk.errors import InvalidInput

MAX_PAGE_SIZE = 100
# Totals up to this many rows are counted exactly (an index-only scan of at most this many
# entries); larger ones come from the planner's estimate.
EXACT_COUNT_LIMIT = 1000
ESTIMATE_TTL_SECONDS = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    limit: int
    total: int
    total_is_estimate: bool
    has_next: bool
    next_cursor: str | None


# --- cursors -------------------------------------------------------------------------------------

_CURSOR_CHECKSUM = b"counseldesk-cursor-v1"
DAMAGED_CURSOR = "cursor is damaged or was altered; start again from page 1."


@dataclass(frozen=True)
class Cursor:
    page: int
    key: tuple[Any, ...]
    fingerprint: str


def encode_cursor(cursor: Cursor) -> str:
    payload = json.dumps(
        {"p": cursor.page, "k": list(cursor.key), "f": cursor.fingerprint},
        separators=(",", ":"),
        default=_json_default,
    ).encode()
    digest = hashlib.blake2b(payload, key=_CURSOR_CHECKSUM, digest_size=6).digest()
    return base64.urlsafe_b64encode(payload + digest).rstrip(b"=").decode()


def decode_cursor(value: str, fingerprint: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput("cursor is not a cursor this API issued.") from None
    payload, digest = raw[:-6], raw[-6:]
    expected = hashlib.blake2b(payload, key=_CURSOR_CHECKSUM, digest_size=6).digest()
    if len(raw) <= 6 or digest != expected:
        raise InvalidInput(DAMAGED_CURSOR)
    try:
        data = json.loads(payload)
        page, key, fingerprint_of_cursor = int(data["p"]), tuple(data["k"]), str(data["f"])
    except (ValueError, TypeError, KeyError):
        raise InvalidInput(DAMAGED_CURSOR) from None
    if fingerprint_of_cursor != fingerprint:
        raise InvalidInput(
            "cursor belongs to other filters; use it with the same parameters it came with."
        )
    if page < 2:
        raise InvalidInput(DAMAGED_CURSOR)
    return Cursor(page=page, key=key, fingerprint=fingerprint_of_cursor)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


# --- EXPLAIN, for estimates ---------------------------------------------------------------------


class _ExplainJSON(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <select>` with the select's parameters bound as usual."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_ExplainJSON)
def _compile_explain(element: _ExplainJSON, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


@lru_cache(maxsize=256)
def _explain(statement: Select[Any]) -> _ExplainJSON:
    # One per statement (they are module constants or lru_cached), so that db/records.py
    # compiles it once and keeps it, instead of a new entry per estimate that would push hot
    # statements out of its cache.
    return _ExplainJSON(statement)


# cache key -> (until when, rows, whether one request is already finding them again)
_estimates: dict[str, tuple[float, int, bool]] = {}
# How long the other requests keep an expired number while one finds it again.
REFRESH_GRACE_SECONDS = 10.0
_clock = time.monotonic  # replaced by tests that move time on


def constant(name: str) -> BindParameter[Any]:
    """A filter value written into the SQL (rendered at execution), not bound: the planner must
    see it (a skewed status, a partial index's predicate), and a generic plan cannot."""
    return bindparam(name, literal_execute=True)


async def estimated_rows(
    source: Source, cache_key: str, statement: Select[Any], params: dict[str, Any]
) -> int:
    """The planner's row estimate for `statement`, remembered for ESTIMATE_TTL_SECONDS."""
    remembered = remembered_estimate(cache_key)
    if remembered is not None:
        return remembered
    rows = await planner_rows(source, statement, params)
    remember_estimate(cache_key, rows)
    return rows


async def planner_rows(source: Source, statement: Select[Any], params: dict[str, Any]) -> int:
    """The planner's row estimate for `statement`, not remembered: for a caller that has just
    found nothing under its key (`remembered_estimate`) and remembers what it decides itself.
    Asking `estimated_rows` instead would look again, and in the grace after an expiry get the
    old number back, so that nothing is ever found again."""
    # EXPLAIN plans for the values it is given whatever plan_cache_mode says: a reader need not
    # change its connection's settings for it, only to change them back for the next read.
    explained = await fetch_records(source, _explain(statement), params, any_settings=True)
    plan = explained[0][0]
    # asyncpg hands back json text, unless a JSON codec is installed on the connection.
    return int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])


def remember_estimate(cache_key: str, rows: int) -> None:
    """Remember `rows` under `cache_key` for ESTIMATE_TTL_SECONDS: the planner's estimate, or
    what a capped count found (so that the next request need not count again)."""
    if len(_estimates) > 10_000:  # filters are few; search terms are not
        _estimates.clear()
    _estimates[cache_key] = (_clock() + ESTIMATE_TTL_SECONDS, rows, False)


def remembered_estimate(cache_key: str) -> int | None:
    """What `remember_estimate` (or `estimated_rows`) keeps under `cache_key`, if still fresh.
    Only counts that went past a limit are remembered (EXACT_COUNT_LIMIT, or search's
    collection cap), so a remembered number also says that counting again, up to that limit,
    would only be cut short again.

    Once it has expired, one caller gets None, to find the number again, and the others keep
    the old one for REFRESH_GRACE_SECONDS meanwhile. Every request for a popular term or filter
    missing at the same moment would each count again: for a common first name that is ~10 ms
    of PostgreSQL's time apiece, and sixteen at once took 130 ms, the 32-client benchmark's
    p99 (docs/benchmarks.md, session 13). If the grace passes and nothing was remembered again
    (the count no longer went past its limit), the number is dropped."""
    cached = _estimates.get(cache_key)
    if cached is None:
        return None
    until, rows, finding_again = cached
    now = _clock()
    if until > now:
        return rows
    if finding_again:
        del _estimates[cache_key]
        return None
    _estimates[cache_key] = (now + REFRESH_GRACE_SECONDS, rows, True)
    return None


def forget_estimates() -> None:
    """Drop the remembered estimates (tests that change the data under one filter)."""
    _estimates.clear()


async def find_page_start(
    source: Source, anchor: ClauseElement, params: dict[str, Any], offset: int
) -> bool:
    """`page=N`: run `anchor` (a key statement with an OFFSET, kept apart from the page so the
    page statement keeps its cached plan) and put the key it finds into `params` as
    `after_at`/`after_id`, where the page statement reads its start. False past the last page."""
    rows = await fetch_records(source, anchor, {**params, "offset": offset})
    if not rows:
        return False
    params["after_at"], params["after_id"] = rows[0]
    return True


def literal_int(n: int) -> ColumnElement[Any]:
    """A LIMIT written into the SQL rather than bound. Prepared statements then get generic
    plans that know the page is small: a bound LIMIT is planned as "10% of the rows", which can
    turn an ordered index walk into a sort."""
    return literal_column(str(int(n)))


async def execute_rows(
    session: AsyncSession, statement: Executable, params: dict[str, Any]
) -> Sequence[Row[Any]]:
    """Run a read on the session's connection, past the ORM layer (these statements return
    plain rows; the ORM's per-execution bookkeeping would cost more than PostgreSQL does)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # a route that just wrote reads its own changes
    connection = await session.connection()
    return (await connection.execute(statement, params)).all()

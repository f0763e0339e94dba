"""Benchmark of the appointments API through the whole HTTP stack.

Starts `counseldesk web` on a real port against a database filled by
`counseldesk demo-data ... --appointments N`, logs in, and drives each page with wrk at 1 and
32 connections: p50, p95, p99 and requests/s. The pages: the list (page 1, deep pages by
cursor and by `page=N`, filters), one counselor's calendar week, the free slots of one
counselor and day (and of everyone), and the days with free slots. Then, at the database
only, the same list pages computed the seed's way — OFFSET + COUNT(*) and one query per
appointment for its student and counselor — next to ours in-process.

    .venv/bin/python bench/bench_appointments.py \\
        --database postgresql://postgres@127.0.0.1:5432/counseldesk_bench \\
        --out bench/results/appointments.json

The wrk machinery, the server and the login are bench_support.py's. The machine is shared:
the script waits (up to --quiet-wait seconds) for a quieter machine and records the load
average next to every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
import httpx

# The checkout, so that `bench.bench_support` imports however this script is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_support import (
    ROOT,
    WRK_SCRIPT,
    Result,
    SeedResult,
    _server_version,
    ensure_wrk,
    free_port,
    http_table,
    load_avg,
    log_in,
    measure_page,
    wait_for_quiet,
    web_server,
)

API = "/api/dashboard/appointments"
PAGE = 20
# Pages over every bulk counselor at once (hundreds of them): too slow for 32 connections to
# finish requests within a few seconds, so they run at one connection only.
EVERYONE = "all counselors: "
BULK_EMAILS = "%@bulk.counseldesk.example"


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    data: dict[str, Any]
    server: dict[str, Any]
    ours: list[Result] = field(default_factory=list)
    database: list[SeedResult] = field(default_factory=list)


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def pick_targets(database: str, tz: ZoneInfo) -> dict[str, Any]:
    """The counselor, days and deep keys the scenarios need."""
    from counseldesk.appointments.repository import AppointmentFilters
    from counseldesk.db.paging import Cursor, encode_cursor

    conn = await asyncpg.connect(database)
    try:
        appointments = int(await conn.fetchval("SELECT count(*) FROM appointments"))
        if appointments < 1000:
            raise SystemExit("no appointments: run counseldesk demo-data --appointments N first")
        students = int(await conn.fetchval("SELECT count(*) FROM students"))
        counselors = int(
            await conn.fetchval("SELECT count(*) FROM counselors WHERE email LIKE $1", BULK_EMAILS)
        )
        # A full-time bulk counselor (weekday hours and Saturday mornings), and how many
        # appointments they have.
        counselor, per_counselor = await conn.fetchrow(
            """
            SELECT c.id, (SELECT count(*) FROM appointments a WHERE a.counselor_id = c.id)
            FROM counselors c
            WHERE c.email LIKE $1
              AND (SELECT count(DISTINCT weekday) FROM counselor_working_hours w
                   WHERE w.counselor_id = c.id) = 6
            ORDER BY c.id LIMIT 1
            """,
            BULK_EMAILS,
        )
        admin_id = await conn.fetchval(
            "SELECT id FROM counselors WHERE role = 'admin' ORDER BY id LIMIT 1"
        )
        shares = {
            row["status"]: int(row["n"])
            for row in await conn.fetch(
                "SELECT status::text, count(*) AS n FROM appointments GROUP BY status"
            )
        }
        everything = AppointmentFilters().fingerprint()
        middle = appointments // 2 // PAGE * PAGE
        end = (appointments - 2 * PAGE) // PAGE * PAGE
        cursors = {}
        for name, offset in (("middle", middle), ("end", end)):
            at, appointment_id = await conn.fetchrow(
                "SELECT starts_at, id FROM appointments ORDER BY starts_at, id OFFSET $1 LIMIT 1",
                offset - 1,
            )
            cursors[name] = encode_cursor(
                Cursor(page=offset // PAGE + 1, key=(at, appointment_id), fingerprint=everything)
            )
        today = datetime.now(tz).date()
        return {
            "appointments": appointments,
            "students": students,
            "bulk_counselors": counselors,
            "statuses": shares,
            "counselor": counselor,
            "counselor_appointments": per_counselor,
            "admin_id": admin_id,
            "today": today.isoformat(),
            "week_start": (today - timedelta(days=today.weekday())).isoformat(),
            "slot_day": _next_weekday(today).isoformat(),
            "middle_page": middle // PAGE + 1,
            "end_page": end // PAGE + 1,
            "cursors": cursors,
        }
    finally:
        await conn.close()


def scenarios(t: dict[str, Any]) -> list[tuple[str, str]]:
    def url(path: str = "", **params: Any) -> str:
        return f"{API}{path}" + ("?" + urlencode(params) if params else "")

    c = t["counselor"]
    return [
        ("baseline: GET /api/auth/me (login check only)", "/api/auth/me"),
        ("list page 1", url(limit=PAGE)),
        ("list page 1, latest first", url(limit=PAGE, order="desc")),
        ("list from today (upcoming)", url(limit=PAGE, **{"from": t["today"]})),
        ("list page=1000", url(page=1000, limit=PAGE)),
        (f"list page={t['middle_page']} (middle, page=N)", url(page=t["middle_page"], limit=PAGE)),
        ("list cursor at the middle", url(cursor=t["cursors"]["middle"])),
        ("list cursor at the end", url(cursor=t["cursors"]["end"])),
        (f"counselor_id={c}", url(counselor_id=c)),
        ("status=pending", url(status="pending")),
        ("status=no_show", url(status="no_show")),
        ("status=completed, latest first", url(status="completed", order="desc")),
        (f"counselor_id={c}&status=confirmed", url(counselor_id=c, status="confirmed")),
        (
            "calendar: one counselor's week",
            url("/calendar", start=t["week_start"], days=7, counselor_id=c),
        ),
        (f"{EVERYONE}calendar: everyone's day", url("/calendar", start=t["today"], days=1)),
        ("slots: one counselor, one day", url("/slots", date=t["slot_day"], counselor_id=c)),
        (f"{EVERYONE}slots: everyone, one day", url("/slots", date=t["slot_day"])),
        ("slots/days: one counselor, 7 days", url("/slots/days", counselor_id=c, limit=7)),
        (f"{EVERYONE}slots/days: everyone, 7 days", url("/slots/days", limit=7)),
    ]


# --- the database only: the seed's way and ours -----------------------------------------------


async def seed_list(conn: asyncpg.Connection, page: int, where: str, args: list[Any]) -> int:
    """A list page the way the seed built its pages: OFFSET, an exact COUNT(*), then one query
    per row for its student and its counselor. Returns the statements it ran."""
    n = len(args)
    rows = await conn.fetch(
        f"SELECT * FROM appointments {where} "  # noqa: S608 - constant fragments
        f"ORDER BY starts_at, id LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        PAGE,
        (page - 1) * PAGE,
    )
    await conn.fetchval(f"SELECT COUNT(*) FROM appointments {where}", *args)  # noqa: S608
    statements = 2
    for row in rows:
        await conn.fetchrow("SELECT * FROM students WHERE id = $1", row["student_id"])
        await conn.fetchrow("SELECT * FROM counselors WHERE id = $1", row["counselor_id"])
        statements += 2
    return statements


async def _timed(
    name: str, runs: int, case: Callable[[], Awaitable[int]], warm: int = 3
) -> SeedResult:
    for _ in range(warm):
        await case()
    times = []
    statements = 0
    for _ in range(runs):
        started = time.perf_counter()
        statements = await case()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    result = SeedResult(
        name=name,
        runs=runs,
        p50_ms=round(statistics.median(times), 2),
        p99_ms=round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        max_ms=round(times[-1], 2),
        statements=statements,
        load_avg=round(load_avg(), 2),
    )
    counted = f"  ({statements} statements)" if statements else ""
    print(f"  {name:52s} p50 {result.p50_ms:9.2f} ms{counted}", flush=True)
    return result


async def measure_database(database: str, t: dict[str, Any], runs: int) -> list[SeedResult]:
    """Ours in-process (repository and slot code, SQLAlchemy included, HTTP excluded), then the
    seed's way with asyncpg, page by page."""
    from counseldesk.appointments import repository
    from counseldesk.appointments.models import AppointmentStatus
    from counseldesk.appointments.slots import BookingWindow, free_days, free_slots_on
    from counseldesk.config import Settings
    from counseldesk.db.engine import Database

    settings = Settings(_env_file=None)
    tz = settings.tz
    db = Database.from_url(database, settings)
    c = t["counselor"]
    everything = repository.AppointmentFilters()
    mine = repository.AppointmentFilters(counselor_id=c)
    pending = repository.AppointmentFilters(status=AppointmentStatus.PENDING)
    slot_day = date.fromisoformat(t["slot_day"])

    def ours(make: Callable[[Any], Awaitable[Any]]) -> Callable[[], Awaitable[int]]:
        async def case() -> int:
            async with db.sessionmaker() as session:
                await make(session)
            return 0  # not counted here: the repository's docstring says which statements

        return case

    results = []
    try:
        print("ours, in-process:", flush=True)
        for name, case in [
            ("ours list page 1", ours(lambda s: repository.appointment_page(s, everything, tz))),
            (
                "ours list page=1000",
                ours(lambda s: repository.appointment_page(s, everything, tz, page=1000)),
            ),
            (
                f"ours list page={t['middle_page']} (middle, page=N)",
                ours(
                    lambda s: repository.appointment_page(s, everything, tz, page=t["middle_page"])
                ),
            ),
            (
                "ours list cursor at the middle",
                ours(
                    lambda s: repository.appointment_page(
                        s, everything, tz, cursor=t["cursors"]["middle"]
                    )
                ),
            ),
            (
                "ours list cursor at the end",
                ours(
                    lambda s: repository.appointment_page(
                        s, everything, tz, cursor=t["cursors"]["end"]
                    )
                ),
            ),
            ("ours status=pending", ours(lambda s: repository.appointment_page(s, pending, tz))),
            (
                f"ours counselor_id={c}",
                ours(lambda s: repository.appointment_page(s, mine, tz)),
            ),
            (
                "ours slots: one counselor, one day",
                ours(
                    lambda s: free_slots_on(s, BookingWindow.of(settings), slot_day, counselor_id=c)
                ),
            ),
            (
                "ours slots/days: one counselor, 7 days",
                ours(lambda s: free_days(s, BookingWindow.of(settings), counselor_id=c)),
            ),
        ]:
            deep = "middle, page=N" in name
            results.append(await _timed(name, max(5, runs // 4) if deep else runs, case))
    finally:
        await db.dispose()

    conn = await asyncpg.connect(database)
    try:
        print("the seed's way:", flush=True)
        for name, page, where, args in [
            ("seed list page 1", 1, "", []),
            ("seed list page=1000", 1000, "", []),
            (f"seed list page={t['middle_page']} (middle)", t["middle_page"], "", []),
            (f"seed list page={t['end_page']} (end)", t["end_page"], "", []),
            ("seed status=pending page 1", 1, "WHERE status = $1", ["pending"]),
            (f"seed counselor_id={c} page 1", 1, "WHERE counselor_id = $1", [c]),
        ]:
            deep = page > 1000

            def case(page: int = page, where: str = where, args: list[Any] = args) -> Any:
                return seed_list(conn, page, where, args)

            results.append(await _timed(name, max(3, runs // 5) if deep else runs, case, 1))
    finally:
        await conn.close()
    return results


# --- report ------------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    lines = http_table(report.ours)
    lines += [
        "",
        "| database only, 1 client | runs | p50 ms | p99 ms | statements | load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in report.database:
        lines.append(
            f"| {s.name} | {s.runs} | {s.p50_ms:,.2f} | {s.p99_ms:,.2f} | "
            f"{s.statements or '—'} | {s.load_avg:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/counseldesk_bench"
    )
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--seconds", type=int, default=4, help="per page and concurrency")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--only", default="", help="run only pages whose name contains this")
    parser.add_argument("--pool-max", default="16")
    parser.add_argument("--web-processes", default="1", help="WEB_PROCESSES of the server")
    parser.add_argument("--redis", default="", help="REDIS_URL for the server (sessions)")
    parser.add_argument("--timezone", default="Africa/Nairobi", help="OFFICE_TIMEZONE")
    parser.add_argument("--database-runs", type=int, default=40)
    parser.add_argument("--skip-database", action="store_true")
    parser.add_argument("--database-only", action="store_true")
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--quiet-wait", type=float, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "appointments.json"))
    args = parser.parse_args()

    tz = ZoneInfo(args.timezone)
    os.environ["OFFICE_TIMEZONE"] = args.timezone  # the server's and the in-process Settings
    targets = asyncio.run(pick_targets(args.database, tz))
    print(json.dumps({k: v for k, v in targets.items() if k != "cursors"}), flush=True)
    server_env = {
        "DB_POOL_MAX": args.pool_max,
        "WEB_PROCESSES": args.web_processes,
        "OFFICE_TIMEZONE": args.timezone,
    }
    if args.redis:
        server_env["REDIS_URL"] = args.redis
    report = Report(
        started=datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "postgres": asyncio.run(_server_version(args.database)),
        },
        data={k: v for k, v in targets.items() if k != "cursors"},
        server={"command": "counseldesk web", **server_env, "seconds": args.seconds},
    )
    if not args.database_only:
        wrk = ensure_wrk()
        report.server["wrk"] = f"{wrk} (-t1 for 1 connection, -t2 otherwise)"
        connections = [int(c) for c in args.connections.split(",")]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(WRK_SCRIPT)
            script = handle.name
        wait_for_quiet(args.quiet_load, args.quiet_wait)
        with web_server(args.database, args.port or free_port(), server_env) as base:
            cookie = log_in(base)
            client = httpx.Client(base_url=base, headers={"Cookie": cookie}, timeout=60)
            # The server answering is the one on the benchmark database.
            total = client.get(API).json()["total"]
            if abs(total - targets["appointments"]) > targets["appointments"] * 0.1:
                raise SystemExit(f"the server at {base} sees {total} appointments")
            for name, url in scenarios(targets):
                if args.only and args.only not in name:
                    continue
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
                body = response.json()
                for c in connections:
                    if c > 1 and name.startswith(EVERYONE):
                        continue
                    result = measure_page(
                        wrk,
                        base,
                        cookie,
                        script,
                        name=name,
                        url=url,
                        connections=c,
                        body=body,
                        warmup=args.warmup,
                        seconds=args.seconds,
                    )
                    report.ours.append(result)
                    print(
                        f"  {name:48s} c={c:<3d} {result.requests_per_s:8.0f} req/s  "
                        f"p50 {result.p50_ms:7.2f}  p95 {result.p95_ms:7.2f}  "
                        f"p99 {result.p99_ms:7.2f} ms  items {result.items}  "
                        f"errors {result.errors}  load {result.load_avg:.2f}",
                        flush=True,
                    )
    if not args.skip_database:
        wait_for_quiet(args.quiet_load, args.quiet_wait)
        report.database = asyncio.run(measure_database(args.database, targets, args.database_runs))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(report), indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(report) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()

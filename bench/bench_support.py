"""Benchmark of the support API's two seed endpoints through the whole HTTP stack.

Starts `counseldesk web` on a real port against a database filled by
`counseldesk demo-data --students N --tickets N --messages N`, logs in, and drives each page
with wrk (installed from Debian's packages when missing) at 1 and 32 connections: p50, p95,
p99 and requests/s. Then computes the same pages the seed's way — OFFSET + COUNT(*) and one
query per ticket for its student, category, assignee and unread count — straight on the
database with asyncpg, for comparison.

    .venv/bin/python bench/bench_support.py \\
        --database postgresql://postgres@127.0.0.1:5432/counseldesk_bench \\
        --out bench/results/latest.json

The machine is shared with whatever else runs on it: the script waits (up to --quiet-wait
seconds) for the 1-minute load average to fall below --quiet-load before it starts, and
records the load average next to every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from cpu_usage import Snapshot, per_request

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEMO_EMAIL = "admin@counseldesk.example"
DEMO_PASSWORD = "counseldesk-demo"  # noqa: S105 - the demo installation's published password
API = "/api/dashboard/support"

WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50": %.3f, "p95": %.3f, "p99": %.3f, "mean": %.3f, "max": %.3f}\n',
    summary.requests, summary.duration, errors, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000))
end
"""

# A mixed scenario's requests: wrk's threads each go round the list, one path per request.
ROTATION = r"""
paths = {%s}
turn = 0
request = function()
  turn = turn %% #paths + 1
  return wrk.format(nil, paths[turn])
end
"""

# The scenarios whose URL is several paths, joined by this (bench_support.scenarios).
MIXED = " | "


@dataclass
class Result:
    name: str
    url: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    requests: int
    errors: int
    load_avg: float
    items: int | None = None
    total: int | None = None
    # CPU milliseconds per request during the measured run (bench/cpu_usage.py).
    cpu_machine_ms: float | None = None
    cpu_web_ms: float | None = None
    cpu_postgres_ms: float | None = None


@dataclass
class SeedResult:
    name: str
    runs: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    statements: int
    load_avg: float


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    data: dict[str, Any]
    server: dict[str, Any]
    ours: list[Result] = field(default_factory=list)
    seed: list[SeedResult] = field(default_factory=list)


def load_avg() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(threshold: float, max_wait: float) -> None:
    deadline = time.monotonic() + max_wait
    while load_avg() > threshold and time.monotonic() < deadline:
        print(f"  waiting for a quieter machine (load {load_avg():.2f} > {threshold})", flush=True)
        time.sleep(15)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)  # noqa: S607
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


# --- the server ------------------------------------------------------------------------------


@contextlib.contextmanager
def web_server(database: str, port: int, env_extra: dict[str, str]) -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        **env_extra,
    }
    process = subprocess.Popen(  # noqa: S603
        [str(VENV_BIN / "counseldesk"), "web"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # A server that could not bind exits: never measure whatever else answers there.
            if process.poll() is not None:
                raise SystemExit(f"counseldesk web stopped: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit("counseldesk web did not start within 60 s")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def log_in(base: str) -> str:
    response = httpx.post(
        base + "/api/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return f"counseldesk_session={response.cookies['counseldesk_session']}"


# --- the pages -------------------------------------------------------------------------------


async def pick_targets(database: str) -> dict[str, Any]:
    """Ids and keys the scenarios need: a typical ticket, the longest one, deep cursors."""
    from counseldesk.db.paging import Cursor, encode_cursor
    from counseldesk.support.repository import InboxFilters

    conn = await asyncpg.connect(database)
    try:
        tickets = int(await conn.fetchval("SELECT count(*) FROM support_tickets"))
        messages = int(await conn.fetchval("SELECT count(*) FROM support_messages"))
        students = int(await conn.fetchval("SELECT count(*) FROM students"))
        admin_id = await conn.fetchval("SELECT id FROM counselors WHERE email = $1", DEMO_EMAIL)
        typical = await conn.fetchval(
            "SELECT id FROM support_tickets ORDER BY last_activity_at DESC LIMIT 1 OFFSET 100"
        )
        giant, giant_count = await conn.fetchrow(
            "SELECT id, message_count FROM support_tickets ORDER BY message_count DESC LIMIT 1"
        )
        oldest_giant = await conn.fetchval(
            "SELECT id FROM support_messages WHERE ticket_id = $1 ORDER BY id LIMIT 1 OFFSET 60",
            giant,
        )
        middle = tickets // 2 // 20 * 20
        closed = int(
            await conn.fetchval("SELECT count(*) FROM support_tickets WHERE status = 'closed'")
        )
        category_3 = int(
            await conn.fetchval("SELECT count(*) FROM support_tickets WHERE category_id = 3")
        )
        end = (tickets - 40) // 20 * 20
        cursors = {}
        for name, offset in (("middle", middle), ("end", end)):
            at, ticket_id = await conn.fetchrow(
                "SELECT last_activity_at, id FROM support_tickets "
                "ORDER BY last_activity_at DESC, id DESC OFFSET $1 LIMIT 1",
                offset - 1,
            )
            cursors[name] = encode_cursor(
                Cursor(
                    page=offset // 20 + 1,
                    key=(at, ticket_id),
                    fingerprint=InboxFilters().fingerprint(),
                )
            )
        name = await conn.fetchval(
            "SELECT full_name FROM students s JOIN support_tickets t "
            "ON t.telegram_user_id = s.telegram_user_id ORDER BY t.last_activity_at DESC LIMIT 1"
        )
        admission = await conn.fetchval(
            "SELECT admission_no FROM students ORDER BY id DESC LIMIT 1"
        )
        unit = await conn.fetchval(
            "SELECT substring(body from 'unit ([A-Z]{3}[0-9]{4})') FROM support_messages "
            "WHERE body LIKE '%(unit %' ORDER BY id DESC LIMIT 1"
        )
        return {
            "tickets": tickets,
            "messages": messages,
            "students": students,
            "admin_id": admin_id,
            "typical_ticket": typical,
            "giant_ticket": giant,
            "giant_messages": giant_count,
            "giant_old_message": oldest_giant,
            "middle_page": middle // 20 + 1,
            "end_page": end // 20 + 1,
            "closed_middle_page": closed // 2 // 20 + 1,
            "category_3_middle_page": category_3 // 2 // 20 + 1,
            "cursors": cursors,
            "full_name": name,
            "first_name": name.split()[0],
            "admission_prefix": admission[:7],
            "unit_code": unit,
        }
    finally:
        await conn.close()


def scenarios(t: dict[str, Any]) -> list[tuple[str, str]]:
    def tickets(**params: Any) -> str:
        return f"{API}/tickets" + ("?" + urlencode(params) if params else "")

    def messages(ticket: int, **params: Any) -> str:
        return f"{API}/tickets/{ticket}/messages" + ("?" + urlencode(params) if params else "")

    return [
        # The floor under every page: the framework alone, then the framework with the login
        # check (session lookup and counselor) and a transaction — no support query at all.
        ("baseline: GET /healthz (no login, no query)", "/healthz"),
        ("baseline: GET /api/auth/me (login check only)", "/api/auth/me"),
        ("inbox page 1", tickets(page=1, limit=20)),
        ("inbox page=2", tickets(page=2, limit=20)),
        ("inbox page=1000", tickets(page=1000, limit=20)),
        (f"inbox page={t['middle_page']} (middle)", tickets(page=t["middle_page"], limit=20)),
        (f"inbox page={t['end_page']} (end)", tickets(page=t["end_page"], limit=20)),
        (
            f"status=closed&page={t['closed_middle_page']} (middle)",
            tickets(status="closed", page=t["closed_middle_page"], limit=20),
        ),
        (
            f"category_id=3&page={t['category_3_middle_page']} (middle)",
            tickets(category_id=3, page=t["category_3_middle_page"], limit=20),
        ),
        ("inbox cursor at the middle", tickets(cursor=t["cursors"]["middle"])),
        ("inbox cursor at the end", tickets(cursor=t["cursors"]["end"])),
        ("status=open", tickets(status="open")),
        ("status=closed", tickets(status="closed")),
        ("priority=urgent", tickets(priority="urgent")),
        ("category_id=3", tickets(category_id=3)),
        ("assigned=mine", tickets(assigned="mine")),
        ("assigned=unassigned", tickets(assigned="unassigned")),
        (
            "status=open&priority=urgent&category_id=3",
            tickets(status="open", priority="urgent", category_id=3),
        ),
        ("assigned=mine&status=in_progress", tickets(assigned="mine", status="in_progress")),
        (f"q={t['unit_code']} (rare word)", tickets(q=t["unit_code"])),
        (f"q={t['admission_prefix']} (admission prefix)", tickets(q=t["admission_prefix"])),
        (f"q={t['full_name']} (full name)", tickets(q=t["full_name"])),
        (f"q={t['first_name']} (common first name)", tickets(q=t["first_name"])),
        ("q=landlord (common word)", tickets(q="landlord")),
        ("messages page 1 (typical ticket)", messages(t["typical_ticket"], page=1, limit=50)),
        (
            f"messages page 1 ({t['giant_messages']}-message ticket)",
            messages(t["giant_ticket"], page=1, limit=50),
        ),
        (
            "messages page=100 (same ticket)",
            messages(t["giant_ticket"], page=100, limit=50),
        ),
        (
            "messages before= near its oldest",
            messages(t["giant_ticket"], before=t["giant_old_message"], limit=50),
        ),
        # A counselor's day is not one page repeated: the same pool serves plain pages,
        # searches and chats in turn, and a search leaves planner settings on its connection
        # that the next plain page must undo (db/records.py). Each request here follows one of
        # another kind; the figures are per request, averaged over the four.
        (
            "mixed: page 1, first name, chat, rare word in turn",
            MIXED.join(
                (
                    tickets(page=1, limit=20),
                    tickets(q=t["first_name"]),
                    messages(t["typical_ticket"], page=1, limit=50),
                    tickets(q=t["unit_code"]),
                )
            ),
        ),
    ]


def run_wrk(
    wrk: str, base: str, url: str, cookie: str, connections: int, seconds: int, script: str
) -> dict[str, Any]:
    threads = 1 if connections == 1 else 2
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        script,
        "-H",
        f"Cookie: {cookie}",
        "-H",
        "Accept: application/json",
        base + url,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    if "WRK_JSON " not in output:
        raise SystemExit(f"wrk printed no summary for {url}: {output[-500:]}")
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    data: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    return data


# --- the seed's way ----------------------------------------------------------------------------


def measure_page(
    wrk: str,
    base: str,
    cookie: str,
    script: str,
    *,
    name: str,
    url: str,
    connections: int,
    body: Any,
    warmup: int,
    seconds: int,
) -> Result:
    """One page at one concurrency: a warm-up run, then the measured one. `body` is what the
    page answered (its items and total go into the result). A mixed scenario's `url` is its
    paths joined by MIXED: wrk is pointed at the first and sends them in turn."""
    paths = url.split(MIXED)
    with rotation_script(script, paths) as script:
        run_wrk(wrk, base, paths[0], cookie, connections, warmup, script)
        before = Snapshot.take()
        data = run_wrk(wrk, base, paths[0], cookie, connections, seconds, script)
    cpu = per_request(before, Snapshot.take(), data["requests"])
    return Result(
        name=name,
        url=url,
        connections=connections,
        requests_per_s=round(data["requests"] / (data["duration_us"] / 1e6), 1),
        p50_ms=data["p50"],
        p95_ms=data["p95"],
        p99_ms=data["p99"],
        mean_ms=data["mean"],
        max_ms=data["max"],
        requests=data["requests"],
        errors=data["errors"] + data["non2xx"],
        load_avg=round(load_avg(), 2),
        items=len(body.get("items", [])) if isinstance(body, dict) else None,
        total=body.get("total") if isinstance(body, dict) else None,
        cpu_machine_ms=cpu["machine"],
        cpu_web_ms=cpu["web"],
        cpu_postgres_ms=cpu["postgres"],
    )


@contextlib.contextmanager
def rotation_script(script: str, paths: list[str]) -> Iterator[str]:
    """The wrk script for `paths`: `script` itself for one path; for several, a copy of it
    that sends them in turn, removed afterwards."""
    if len(paths) == 1:
        yield script
        return
    quoted = ", ".join(json.dumps(path) for path in paths)  # JSON strings are Lua strings here
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as handle:
        handle.write(Path(script).read_text() + ROTATION % quoted)
        handle.flush()
        yield handle.name


async def seed_inbox(
    conn: asyncpg.Connection, page: int, counselor: int, status: str | None
) -> int:
    """What the seed's Node.js handler did: OFFSET page, COUNT(*), then per ticket its
    student, category, assignee and unread count. Returns the statements it ran."""
    where, args = ("WHERE status = $3", [status]) if status else ("", [])
    rows = await conn.fetch(
        f"SELECT * FROM support_tickets {where} "  # noqa: S608 - constant fragments
        "ORDER BY last_activity_at DESC LIMIT $1 OFFSET $2",
        20,
        (page - 1) * 20,
        *args,
    )
    await conn.fetchval(
        f"SELECT COUNT(*) FROM support_tickets {where.replace('$3', '$1')}",  # noqa: S608
        *args,
    )
    statements = 2
    for row in rows:
        await conn.fetchrow("SELECT * FROM students WHERE id = $1", row["student_id"])
        await conn.fetchrow("SELECT * FROM support_categories WHERE id = $1", row["category_id"])
        await conn.fetchrow("SELECT * FROM counselors WHERE id = $1", row["assigned_counselor_id"])
        await conn.fetchval(
            "SELECT COUNT(*) FROM support_messages m WHERE m.ticket_id = $1 "
            "AND m.sender_type = 'student' AND m.id > COALESCE((SELECT last_read_message_id "
            "FROM support_ticket_reads WHERE ticket_id = $1 AND counselor_id = $2), 0)",
            row["id"],
            counselor,
        )
        statements += 4
    return statements


async def seed_messages(conn: asyncpg.Connection, ticket: int, page: int) -> int:
    rows = await conn.fetch(
        "SELECT * FROM support_messages WHERE ticket_id = $1 "
        "ORDER BY created_at DESC LIMIT $2 OFFSET $3",
        ticket,
        50,
        (page - 1) * 50,
    )
    await conn.fetchval("SELECT COUNT(*) FROM support_messages WHERE ticket_id = $1", ticket)
    statements = 2
    for row in rows:
        if row["counselor_id"] is not None:
            await conn.fetchrow("SELECT * FROM counselors WHERE id = $1", row["counselor_id"])
            statements += 1
        if row["notification_id"] is not None:
            await conn.fetchrow("SELECT * FROM notifications WHERE id = $1", row["notification_id"])
            statements += 1
    return statements


async def measure_seed(database: str, t: dict[str, Any], runs: int) -> list[SeedResult]:
    conn = await asyncpg.connect(database)
    results = []
    cases: list[tuple[str, Any]] = [
        ("seed inbox page 1", lambda: seed_inbox(conn, 1, t["admin_id"], None)),
        ("seed inbox page=1000", lambda: seed_inbox(conn, 1000, t["admin_id"], None)),
        (
            f"seed inbox page={t['middle_page']} (middle)",
            lambda: seed_inbox(conn, t["middle_page"], t["admin_id"], None),
        ),
        (
            f"seed inbox page={t['end_page']} (end)",
            lambda: seed_inbox(conn, t["end_page"], t["admin_id"], None),
        ),
        ("seed status=open page 1", lambda: seed_inbox(conn, 1, t["admin_id"], "open")),
        ("seed messages page 1 (typical)", lambda: seed_messages(conn, t["typical_ticket"], 1)),
        (
            f"seed messages page 1 ({t['giant_messages']}-message ticket)",
            lambda: seed_messages(conn, t["giant_ticket"], 1),
        ),
        ("seed messages page=100 (same)", lambda: seed_messages(conn, t["giant_ticket"], 100)),
    ]
    try:
        for name, case in cases:
            times = []
            statements = 0
            deep = "middle" in name or "end" in name
            count = max(3, runs // 5) if deep else runs
            await case()  # warm
            for _ in range(count):
                started = time.perf_counter()
                statements = await case()
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            results.append(
                SeedResult(
                    name=name,
                    runs=count,
                    p50_ms=round(statistics.median(times), 2),
                    p99_ms=round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
                    max_ms=round(times[-1], 2),
                    statements=statements,
                    load_avg=round(load_avg(), 2),
                )
            )
            print(f"  {name:48s} p50 {results[-1].p50_ms:9.2f} ms  ({statements} statements)")
    finally:
        await conn.close()
    return results


async def measure_ours_db(database: str, t: dict[str, Any], runs: int) -> list[SeedResult]:
    """The same pages through counseldesk's own queries, in-process, without HTTP: the
    like-for-like comparison with the seed's way above (both database round trips only)."""
    from counseldesk.config import Settings
    from counseldesk.db.engine import Database
    from counseldesk.support import repository
    from counseldesk.support.models import TicketStatus

    db = Database.from_url(database, Settings(_env_file=None))
    me = t["admin_id"]
    everything = repository.InboxFilters()
    cases: list[tuple[str, Any]] = [
        ("ours inbox page 1", lambda s: repository.ticket_page(s, me, everything)),
        ("ours inbox page=1000", lambda s: repository.ticket_page(s, me, everything, page=1000)),
        (
            f"ours inbox page={t['middle_page']} (middle)",
            lambda s: repository.ticket_page(s, me, everything, page=t["middle_page"]),
        ),
        (
            f"ours inbox page={t['end_page']} (end)",
            lambda s: repository.ticket_page(s, me, everything, page=t["end_page"]),
        ),
        (
            "ours inbox cursor at the middle",
            lambda s: repository.ticket_page(s, me, everything, cursor=t["cursors"]["middle"]),
        ),
        (
            "ours inbox cursor at the end",
            lambda s: repository.ticket_page(s, me, everything, cursor=t["cursors"]["end"]),
        ),
        (
            "ours status=open page 1",
            lambda s: repository.ticket_page(
                s, me, repository.InboxFilters(status=TicketStatus.OPEN)
            ),
        ),
        (
            "ours messages page 1 (typical)",
            lambda s: repository.message_page(s, t["typical_ticket"]),
        ),
        (
            f"ours messages page 1 ({t['giant_messages']}-message ticket)",
            lambda s: repository.message_page(s, t["giant_ticket"]),
        ),
        (
            "ours messages page=100 (same)",
            lambda s: repository.message_page(s, t["giant_ticket"], page=100),
        ),
    ]
    results = []
    try:
        for name, case in cases:
            times = []
            for attempt in range(runs + 5):
                started = time.perf_counter()
                async with db.sessionmaker() as session:
                    await case(session)
                if attempt >= 5:  # the first runs prepare statements and plans
                    times.append((time.perf_counter() - started) * 1000)
            times.sort()
            results.append(
                SeedResult(
                    name=name,
                    runs=len(times),
                    p50_ms=round(statistics.median(times), 2),
                    p99_ms=round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
                    max_ms=round(times[-1], 2),
                    statements=1,
                    load_avg=round(load_avg(), 2),
                )
            )
            print(f"  {name:48s} p50 {results[-1].p50_ms:9.2f} ms", flush=True)
    finally:
        await db.dispose()
    return results


# --- report ------------------------------------------------------------------------------------


def http_table(results: list[Result]) -> list[str]:
    """The through-HTTP results as markdown table lines."""
    lines = [
        "| page | conns | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | load "
        "| CPU ms/req: machine | web | PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.connections} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p95_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.errors} | {r.load_avg:.1f} "
            f"| {r.cpu_machine_ms} | {r.cpu_web_ms} | {r.cpu_postgres_ms} |"
        )
    return lines


def markdown(report: Report) -> str:
    lines = http_table(report.ours)
    lines += [
        "",
        "| the seed's way (database only, 1 client) | runs | p50 ms | p99 ms | statements |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in report.seed:
        lines.append(
            f"| {s.name} | {s.runs} | {s.p50_ms:,.2f} | {s.p99_ms:,.2f} | {s.statements} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/counseldesk_bench"
    )
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--seconds", type=int, default=8, help="per page and concurrency")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--only", default="", help="run only pages whose name contains this")
    parser.add_argument("--pool-max", default="16")
    parser.add_argument(
        "--web-processes",
        default="1",
        help="WEB_PROCESSES of the server (pool sizes are per process)",
    )
    parser.add_argument("--redis", default="", help="REDIS_URL for the server (sessions)")
    parser.add_argument("--seed-runs", type=int, default=20)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument(
        "--database-only",
        action="store_true",
        help="only the like-for-like database timings: ours in-process and the seed's way",
    )
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--quiet-wait", type=float, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()

    targets = asyncio.run(pick_targets(args.database))
    if args.database_only:
        wait_for_quiet(args.quiet_load, args.quiet_wait)
        print("ours, database only:", flush=True)
        ours = asyncio.run(measure_ours_db(args.database, targets, args.seed_runs))
        print("the seed's way:", flush=True)
        seed = asyncio.run(measure_seed(args.database, targets, args.seed_runs))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([asdict(r) for r in ours + seed], indent=2))
        for r in ours + seed:
            print(f"| {r.name} | {r.runs} | {r.p50_ms:,.2f} | {r.p99_ms:,.2f} | {r.load_avg} |")
        return
    wrk = ensure_wrk()
    print(json.dumps({k: v for k, v in targets.items() if k != "cursors"}), flush=True)
    server_env = {
        "DB_POOL_MAX": args.pool_max,
        "WEB_PROCESSES": args.web_processes,
    }
    if args.redis:
        server_env["REDIS_URL"] = args.redis
    report = Report(
        started=datetime.now().astimezone().isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "postgres": asyncio.run(_server_version(args.database)),
        },
        data={k: targets[k] for k in ("students", "tickets", "messages", "giant_messages")},
        server={
            "command": "counseldesk web",
            **server_env,
            "wrk": f"{wrk} (-t1 for 1 connection, -t2 otherwise)",
            "seconds": args.seconds,
        },
    )
    connections = [int(c) for c in args.connections.split(",")]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(WRK_SCRIPT)
        script = handle.name
    wait_for_quiet(args.quiet_load, args.quiet_wait)
    with web_server(args.database, args.port or free_port(), server_env) as base:
        cookie = log_in(base)
        client = httpx.Client(base_url=base, headers={"Cookie": cookie}, timeout=60)
        # The server answering is the one on the benchmark database.
        total = client.get(f"{API}/tickets").json()["total"]
        if abs(total - targets["tickets"]) > targets["tickets"] * 0.1:
            raise SystemExit(f"the server at {base} sees {total} tickets, not {targets['tickets']}")
        for name, url in scenarios(targets):
            if args.only and args.only not in name:
                continue
            answers = [client.get(path).json() for path in url.split(MIXED)]  # warm them
            body = answers[0]  # what the (first) page holds
            for c in connections:
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
                if result.errors:
                    print(f"  !! {result.errors} failed requests for {url}", flush=True)
                report.ours.append(result)
                print(
                    f"  {name:48s} c={c:<3d} {result.requests_per_s:8.0f} req/s  "
                    f"p50 {result.p50_ms:7.2f}  p95 {result.p95_ms:7.2f}  "
                    f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                    flush=True,
                )
    if not args.skip_seed:
        print("the seed's way:", flush=True)
        report.seed = asyncio.run(measure_seed(args.database, targets, args.seed_runs))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(report), indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(report) + "\n")
    print(markdown(report))


async def _server_version(database: str) -> str:
    conn = await asyncpg.connect(database)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()

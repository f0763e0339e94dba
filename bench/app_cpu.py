"""CPU per request of the application itself: the ASGI app called in-process, no HTTP server.

The HTTP benchmark (bench_support.py) measures what a client sees, on a machine whose speed
can change by half from one run to the next. To compare two versions of the code, this asks a
narrower question with less noise: how much CPU does this process spend on one request — the
routing, dependencies, SQL rendering, driver and JSON — with PostgreSQL answering on a real
connection (its own CPU is not counted). The app is built as `counseldesk web` builds it, and
the requests go through its whole middleware stack, logged in as the demo admin.

    .venv/bin/python bench/app_cpu.py \\
        --database postgresql://postgres@127.0.0.1:5432/counseldesk_bench \\
        /api/dashboard/support/tickets "/api/dashboard/support/tickets?q=PHY0167"

For each path: --warmup requests, then --rounds rounds of --requests requests; it prints the
fastest round and the median round, in ms of CPU (and of wall time) per request. To compare
versions, run the older one with PYTHONPATH pointing at a checkout of it, alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

DEMO_EMAIL = "admin@counseldesk.example"
DEMO_PASSWORD = "counseldesk-demo"  # noqa: S105 - the demo installation's published password
DEFAULT_PATHS = [
    "/healthz",
    "/api/auth/me",
    "/api/dashboard/support/tickets",
    "/api/dashboard/support/tickets?page=2",
    "/api/dashboard/support/tickets?status=open",
]


class InProcessClient:
    """Sends ASGI HTTP requests straight to the app and collects the response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [(b"host", b"127.0.0.1")]

    async def request(self, method: str, url: str, body: bytes = b"") -> tuple[int, Any, bytes]:
        path, _, query = url.partition("?")
        headers = list(self.headers)
        if body:
            headers.append((b"content-type", b"application/json"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        received = False
        response: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = message["headers"]
            elif message["type"] == "http.response.body":
                response["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return response["status"], response["headers"], response["body"]

    async def log_in(self) -> None:
        credentials = json.dumps({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}).encode()
        status, headers, body = await self.request("POST", "/api/auth/login", credentials)
        if status != 200:
            raise SystemExit(f"log-in failed ({status}): {body.decode()}")
        cookie = next(
            value.split(b";")[0]
            for name, value in headers
            if name == b"set-cookie" and value.startswith(b"counseldesk_session=")
        )
        self.headers.append((b"cookie", cookie))


async def measure(args: argparse.Namespace) -> None:
    from counseldesk.config import Settings
    from counseldesk.ops import collector
    from counseldesk.runtime import Runtime
    from counseldesk.web.app import create_app

    settings = Settings(database_url=args.database, redis_url=args.redis)
    runtime = Runtime.open(settings, args.database)
    try:
        client = InProcessClient(create_app(runtime))
        await client.log_in()
        # The garbage collector as a server process has it (serve.py).
        collector.tune_for_serving()
        collector.freeze_startup_objects()
        for url in args.paths or DEFAULT_PATHS:
            for _ in range(args.warmup):
                status, _, body = await client.request("GET", url)
            if status != 200:
                raise SystemExit(f"{url}: {status} {body[:200].decode()}")
            rounds = []
            for _ in range(args.rounds):
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(args.requests):
                    await client.request("GET", url)
                rounds.append(
                    (
                        (time.process_time() - cpu) / args.requests * 1000,
                        (time.perf_counter() - wall) / args.requests * 1000,
                    )
                )
            cpus = sorted(r[0] for r in rounds)
            walls = sorted(r[1] for r in rounds)
            print(
                f"{url:60s} CPU ms/request: fastest {cpus[0]:.3f}, median "
                f"{statistics.median(cpus):.3f}   wall: median {statistics.median(walls):.3f}",
                flush=True,
            )
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help=f"GET paths (default: {DEFAULT_PATHS})")
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/counseldesk_bench"
    )
    parser.add_argument("--redis", default=None, help="REDIS_URL (sessions), as the server")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="per round")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Several web processes on one port: the parent binds, forks, and watches its children.

One Python process is CPU-bound long before PostgreSQL is busy (docs/benchmarks.md), so
`counseldesk web` with WEB_PROCESSES=N runs N copies of the web part. The parent opens the
listening socket before forking and every child accepts on it (the kernel hands each connection
to one of them); each child builds its own Runtime (its own pool and bus) after the fork, since
neither an event loop nor a connection pool survives one. SIGINT/SIGTERM to the parent stops
the children and waits for them; a child that dies takes the others down with it, so a
supervisor (systemd) sees the failure instead of a silently smaller server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def run_forked(processes: int, sock: socket.socket, child: Callable[[socket.socket], int]) -> int:
    """Run `child(sock)` in `processes` forked processes until they end or the parent is told to
    stop; the parent's exit code (0 when every child ended cleanly)."""
    children: set[int] = set()
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # the child: default signal handling, run, never return into the parent
            code = 1
            try:
                code = child(sock)
            except BaseException:
                log.exception("web process %d failed", os.getpid())
            finally:
                os._exit(code)
        children.add(pid)
    log.info("web: %d processes on %s", processes, sock.getsockname())

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                exit_code = 1
                log.error("web process %d ended with %d; stopping the others", pid, code)
                forward(signal.SIGTERM, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return exit_code

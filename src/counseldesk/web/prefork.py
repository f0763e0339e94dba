"""Several web processes on one port: the parent binds, forks, and watches its children.

One Python process is CPU-bound long before PostgreSQL is busy (docs/benchmarks.md), so
`counseldesk web` with WEB_PROCESSES=N runs N copies of the web part. The parent opens one
listening socket per child before forking, all on the same port (SO_REUSEPORT), and each child
accepts on its own; each child builds its own Runtime (its own pool and bus) after the fork,
since neither an event loop nor a connection pool survives one. SIGINT/SIGTERM to the parent stops
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


def bind(host: str, port: int, processes: int) -> list[socket.socket]:
    """One listening socket per web process, all on `host`:`port` (with port 0, the one the
    first was given). The kernel spreads new connections over them by a hash of each
    connection's addresses. With one socket shared by all the processes, the process that woke
    first accepted every connection waiting, so a burst of keep-alive connections could all
    land on one process while the others idled: 32 connections of the benchmark's client were
    spread 32/0, 13/19, 32/0 and 19/13 over two processes in four runs (docs/benchmarks.md,
    session 13)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # SO_REUSEPORT would also let this join a port another server (another copy, an old
    # version) already listens on, and split its traffic: a plain bind first fails there.
    with socket.create_server((host, port), family=family) as probe:
        port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(processes):
            sock = socket.create_server((host, port), family=family, backlog=2048, reuse_port=True)
            port = sock.getsockname()[1]
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def run_forked(sockets: list[socket.socket], child: Callable[[socket.socket], int]) -> int:
    """Run `child(sock)` in one forked process per socket until they end or the parent is told
    to stop; the parent's exit code (0 when every child ended cleanly). Each child keeps only
    its own socket and the parent none, so a socket closes with its process: the kernel then
    stops sending it connections that nobody would accept."""
    children: set[int] = set()
    address = sockets[0].getsockname()
    for mine in sockets:
        pid = os.fork()
        if pid == 0:  # the child: default signal handling, run, never return into the parent
            code = 1
            try:
                for other in sockets:
                    if other is not mine:
                        other.close()
                code = child(mine)
            except BaseException:
                log.exception("web process %d failed", os.getpid())
            finally:
                os._exit(code)
        children.add(pid)
    for sock in sockets:
        sock.close()
    log.info("web: %d processes on %s", len(sockets), address)

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
    return exit_code

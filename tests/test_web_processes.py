"""`counseldesk web` with WEB_PROCESSES=2: two real processes on one port, stopped together."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from counseldesk.web import prefork

LISTENING = re.compile(r"web: 2 processes on \('([\d.]+)', (\d+)\)")


def _children(pid: int) -> list[int]:
    out = subprocess.run(  # noqa: S603 - ps with fixed arguments
        ["ps", "--ppid", str(pid), "-o", "pid="],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(line) for line in out.split()]


_LISTEN, _ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def _sockets(state: str, port: int, pids: list[int]) -> list[int]:
    """For each TCP socket in `state` on local `port` that one of `pids` holds, its pid."""
    wanted = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, status, inode = fields[1], fields[3], fields[9]
            if status == state and int(local.rsplit(":", 1)[1], 16) == port:
                wanted.add(f"socket:[{inode}]")
    held = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                if os.readlink(fd) in wanted:
                    held.append(pid)
    return held


def test_two_processes_share_the_port_and_stop_together(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "web.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEB_PROCESSES": "2",
        "PORT": "0",  # any free port; the parent logs the one it bound
        "LOG_LEVEL": "INFO",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "counseldesk.cli", "web"], stdout=log, stderr=log, env=env
        )
    try:
        deadline = time.monotonic() + 90
        url = None
        while time.monotonic() < deadline and process.poll() is None:
            text = log_path.read_text()
            match = LISTENING.search(text)
            if match and text.count("Application startup complete") == 2:
                url = f"http://{match.group(1)}:{match.group(2)}"
                break
            time.sleep(0.2)
        assert url is not None, log_path.read_text()
        assert len(_children(process.pid)) == 2
        # Each process set up its garbage collector for serving (ops/collector.py).
        deadline = time.monotonic() + 10
        while log_path.read_text().count("start-up objects frozen") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert "thresholds (50000, 20, 20)" in log_path.read_text()

        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(6):  # new connections, spread by the kernel over both processes
                response = client.get("/readyz", headers={"Connection": "close"})
                assert response.status_code == 200
                assert response.json()["status"] == "ready"

        # Each process listens on its own socket, and a burst of new connections is spread
        # over both (all sixteen on one would happen once in 30,000 bursts).
        port = int(url.rsplit(":", 1)[1])
        children = _children(process.pid)
        everyone = [process.pid, *children]
        assert sorted(_sockets(_LISTEN, port, everyone)) == sorted(children)
        burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            deadline = time.monotonic() + 10
            while len(_sockets(_ESTABLISHED, port, children)) < 16:
                assert time.monotonic() < deadline, _sockets(_ESTABLISHED, port, children)
                time.sleep(0.05)
            assert set(_sockets(_ESTABLISHED, port, children)) == set(children)
        finally:
            for connection in burst:
                connection.close()

        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        for child in children:
            assert (
                not Path(f"/proc/{child}").exists()
                or "zombie" in Path(f"/proc/{child}/status").read_text()
            )
    finally:
        if process.poll() is None:
            # A failed test must not leave the web processes serving: SIGKILL to the parent
            # alone would orphan them.
            for child in _children(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            process.kill()
            process.wait()


def test_a_port_another_server_listens_on_is_refused() -> None:
    # Each process's socket joins the port with SO_REUSEPORT, which would also join another
    # server's: that port is refused instead, as a plain bind would be.
    with socket.create_server(("127.0.0.1", 0), reuse_port=True) as other:
        port = other.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            prefork.bind("127.0.0.1", port, 2)
    sockets = prefork.bind("127.0.0.1", 0, 2)
    try:
        assert len({sock.getsockname() for sock in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()

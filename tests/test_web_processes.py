"""`counseldesk web` with WEB_PROCESSES=2: two real processes on one port, stopped together."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

LISTENING = re.compile(r"web: 2 processes on \('([\d.]+)', (\d+)\)")


def _children(pid: int) -> list[int]:
    out = subprocess.run(  # noqa: S603 - ps with fixed arguments
        ["ps", "--ppid", str(pid), "-o", "pid="],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(line) for line in out.split()]


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
            process.kill()
            process.wait()

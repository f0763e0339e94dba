"""Where a benchmark's CPU went: the whole machine, the web server's processes, PostgreSQL.

Read from /proc before and after a measured run. On a machine where the load generator, the
server and PostgreSQL share two cores, CPU time per request says what latency cannot: how many
requests per second the machine could serve at best (cores × 1000 / ms per request), and which
part is worth making cheaper. CPU of processes that exited during the run (a PostgreSQL backend
whose connection was closed) counts in the machine's total only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Snapshot:
    machine: float  # busy seconds of all cores
    processes: dict[int, tuple[str, float]]  # pid: ("web" or "postgres", CPU seconds so far)

    @classmethod
    def take(cls) -> Snapshot:
        fields = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        processes = {}
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:  # exited meanwhile
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            kind = (
                "postgres" if name == "postgres" else "web" if b"counseldesk web" in command else ""
            )
            if kind:
                after_name = stat.rsplit(")", 1)[1].split()
                seconds = (int(after_name[11]) + int(after_name[12])) / TICKS
                processes[int(entry.name)] = (kind, seconds)
        return cls((sum(fields) - idle) / TICKS, processes)


def per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request between two snapshots: the machine, the web server's
    processes, PostgreSQL's (those alive at the end; a process started meanwhile counts whole)."""
    spent = {"web": 0.0, "postgres": 0.0}
    for pid, (kind, seconds) in after.processes.items():
        earlier = before.processes.get(pid)
        spent[kind] += seconds - (earlier[1] if earlier is not None else 0.0)
    n = max(requests, 1)
    return {
        "machine": round((after.machine - before.machine) / n * 1000, 2),
        "web": round(spent["web"] / n * 1000, 2),
        "postgres": round(spent["postgres"] / n * 1000, 2),
    }

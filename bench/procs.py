"""Resident memory and CPU time of processes, read from /proc (no psutil needed)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def rss_mib(pid: int) -> float | None:
    """Current resident set size (VmRSS) in MiB, or None if the process is gone."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else round(kib / 1024, 1)


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size (VmHWM) in MiB, or None if the process is gone."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else round(kib / 1024, 1)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def machine_busy_seconds() -> float:
    """CPU time all cores of the machine spent busy since boot (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS_PER_S


@dataclass
class CpuMeter:
    """CPU share of several named processes over an interval (1.0 = one core busy)."""

    pids: dict[str, int]
    _start: dict[str, float | None] | None = None
    _since: float = 0.0

    def start(self, now: float) -> None:
        """Remember every process's CPU time at `now` (monotonic seconds)."""
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._start["machine"] = machine_busy_seconds()
        self._since = now

    def shares(self, now: float) -> dict[str, float]:
        """Cores used per process since `start`, the whole machine's, and everyone else's."""
        assert self._start is not None, "start() first"
        elapsed = max(now - self._since, 1e-9)
        result = {}
        for name, pid in self.pids.items():
            before, after = self._start[name], cpu_seconds(pid)
            if before is not None and after is not None:
                result[name] = round((after - before) / elapsed, 2)
        machine_before = self._start["machine"] or 0.0
        result["machine"] = round((machine_busy_seconds() - machine_before) / elapsed, 2)
        ours = sum(v for k, v in result.items() if k != "machine")
        result["others"] = round(max(result["machine"] - ours, 0.0), 2)
        return result


def machine() -> dict[str, object]:
    """nproc, CPU model and total memory of this machine."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def import_times(
    modules: tuple[str, ...] = ("switchboard_intake.main", "switchboard_notes.main"), runs: int = 3
) -> dict[str, float]:
    """Median seconds `python -X importtime` reports for importing each service (cumulative)."""
    import statistics
    import subprocess
    import sys

    result: dict[str, float] = {}
    for module in modules:
        samples = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import {module}"],
                capture_output=True,
                text=True,
                check=True,
            )
            last = [line for line in done.stderr.splitlines() if line.endswith(f"| {module}")]
            samples.append(int(last[-1].split("|")[1]) / 1_000_000)
        result[module.split(".")[0].removeprefix("switchboard_")] = round(
            statistics.median(samples), 2
        )
    return result

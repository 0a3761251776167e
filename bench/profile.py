"""Sampling profiles of the service processes with py-spy, summarised per function.

py-spy is not a project dependency: install it where you like (`uv pip install py-spy`
into the venv, or `uv tool install py-spy`) or point `PY_SPY` at the binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATE_HZ = 200
# Where CPU goes, by concern: a sample counts for a concern when any frame of its stack
# matches (so concerns overlap: a MongoDB call inside the outbox relay counts for both).
CONCERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "http: our ASGI guard and metrics (switchboard_platform/http.py)": (
            r"switchboard_platform/http\.py"
        ),
        "http: FastAPI/Starlette routing, validation, dependencies": r"\((fastapi|starlette)/",
        "http: uvicorn protocol (switchboard_platform/serve.py guard)": (
            r"\(uvicorn/protocols|switchboard_platform/serve\.py"
        ),
        "auth: token verification": r"switchboard_platform/auth\.py|\(jwt/",
        "telemetry: OpenTelemetry spans and propagation": r"\(opentelemetry/|telemetry\.py",
        "mongo: pymongo (async client)": r"\(pymongo/",
        "kafka: aiokafka client": r"\(aiokafka/",
        "outbox: appends and relay (outbox.py, outbox_relay.py)": (
            r"switchboard_platform/outbox(_relay)?\.py"
        ),
        "consumer: topic_consumer.py and the pipeline (consumer.py)": (
            r"switchboard_platform/(topic_consumer|consumer)\.py"
        ),
        "event encode/decode (switchboard_contracts)": r"switchboard_contracts/",
        "pydantic models": r"\(pydantic/",
        "logging (JSON lines, access log)": (
            r"\(logging/|pythonjsonlogger|switchboard_platform/logs"
        ),
        "prometheus metrics": r"prometheus_client|switchboard_platform/(metrics|flows)\.py",
        "the service's own code (switchboard_intake, switchboard_notes)": (
            r"switchboard_(intake|notes)/"
        ),
    }.items()
}
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy binary: $PY_SPY, the venv's, or one on PATH."""
    candidates = [os.environ.get("PY_SPY"), str(Path(sys.executable).with_name("py-spy"))]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("py-spy")


def start_recording(binary: str, pid: int, duration_s: float, out: Path) -> subprocess.Popen[bytes]:
    """Record `pid` for `duration_s` into collapsed stacks at `out`.

    Non-blocking sampling of the thread holding the GIL only (`--gil`): the samples show
    where the process spends CPU in Python, not where its threads wait.
    """
    return subprocess.Popen(
        [
            *(binary, "record", "--pid", str(pid), "--duration", str(round(duration_s))),
            *("--rate", str(RATE_HZ), "--format", "raw", "--nonblocking", "--gil"),
            *("-o", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _short(frame: str) -> str:
    """`function (path/to/module.py)` as `function (package/module.py)`."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/src/" in path:
        path = path.split("/src/", 1)[1]
    elif "python3." in path:
        path = "stdlib/" + path.rsplit("/", 1)[-1]
    return f"{match['func']} ({path})"


def summarize(collapsed: Path, duration_s: float, top: int = 25) -> dict[str, Any]:
    """Busy share of the process, and the functions with the most inclusive and self time."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    concerns: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")[1:]]  # first entry: the thread
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        for concern, pattern in CONCERNS.items():
            if any(pattern.search(f) for f in frames):
                concerns[concern] += count
        if frames:
            own[frames[-1]] += count
            packages[_package(frames[-1])] += count
    if total == 0:
        return {"samples": 0}

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "gil_held_share": round(total / (RATE_HZ * duration_s), 2),
        "by_concern_pct": share(concerns),
        "inclusive_pct": share(inclusive),
        "self_pct": share(own),
        "self_pct_by_package": share(packages),
    }


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    return path.split("/", 1)[0] if "/" in path else path


@dataclass
class Recording:
    """py-spy recording intake and notes during one step."""

    recorders: dict[str, tuple[subprocess.Popen[bytes], Path]]
    duration_s: float

    @classmethod
    def start(
        cls, pids: dict[str, int], out_dir: Path | None, duration_s: float
    ) -> Recording | None:
        """Start recording into `out_dir`; None when not asked to, or without py-spy."""
        if out_dir is None:
            return None
        binary = py_spy()
        if binary is None:
            print("py-spy not found: install it or set PY_SPY; no profile taken", flush=True)
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        recorders = {}
        for name in ("intake", "notes"):
            out = out_dir / f"{name}.collapsed.txt"
            recorders[name] = (start_recording(binary, pids[name], duration_s, out), out)
        return cls(recorders, duration_s)

    def finish(self) -> dict[str, Any]:
        """Wait for py-spy and summarise each profile."""
        summaries = {}
        for name, (process, out) in self.recorders.items():
            process.wait(30)
            if out.exists():
                summaries[name] = summarize(out, self.duration_s)
        return summaries

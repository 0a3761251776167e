"""The supervisor restarts crashed children with backoff and stops them all, leaving no orphans."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path

from switchboard_dev.supervisor import Backoff, ChildSpec, Supervisor

CRASHING_CHILD = """
import os, sys
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
print("hello from", os.getpid(), flush=True)
sys.exit(3)
"""

# Ignores SIGTERM and leaves a grandchild behind: only SIGKILL of the whole group ends both.
STUBBORN_CHILD = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid}\\n")
print("ready", flush=True)
time.sleep(60)
"""

POLITE_CHILD = """
import os, sys, time
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _wait_for(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _script(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return str(path)


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(initial=1, maximum=30, reset_after=60)
    delays = []
    delay = None
    for _ in range(7):
        delay = backoff.next_delay(delay, uptime=0.5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(30, uptime=60) == 1


async def test_child_that_dies_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    child = ChildSpec(
        "crashy", (sys.executable, _script(tmp_path, "c", CRASHING_CHILD), str(pids_file))
    )
    out = io.StringIO()
    supervisor = Supervisor(
        [child], backoff=Backoff(initial=0.05, maximum=0.2, reset_after=60), out=out
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await _wait_for(lambda: supervisor.restarts["crashy"] >= 4)
    stop.set()
    await asyncio.wait_for(task, 10)

    pids = pids_file.read_text().split()
    assert len(set(pids)) >= 4
    text = out.getvalue()
    delays = re.findall(r"crashy \* exited with code 3; restarting in ([\d.]+)s", text)
    assert delays[:4] == ["0.05", "0.1", "0.2", "0.2"]
    assert f"crashy | hello from {pids[0]}" in text


async def test_stop_terminates_children_then_kills_the_stubborn_group(tmp_path: Path) -> None:
    stubborn_file, polite_file = tmp_path / "stubborn", tmp_path / "polite"
    children = [
        ChildSpec(
            "stubborn", (sys.executable, _script(tmp_path, "s", STUBBORN_CHILD), str(stubborn_file))
        ),
        ChildSpec(
            "polite", (sys.executable, _script(tmp_path, "p", POLITE_CHILD), str(polite_file))
        ),
    ]
    out = io.StringIO()
    supervisor = Supervisor(children, grace=0.5, out=out)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await _wait_for(
        lambda: stubborn_file.exists() and polite_file.exists() and "ready" in out.getvalue()
    )
    pids = [int(p) for p in (stubborn_file.read_text() + polite_file.read_text()).split()]
    assert all(_alive(pid) for pid in pids)

    stop.set()
    await asyncio.wait_for(task, 10)

    # SIGKILL is delivered asynchronously: the orphaned grandchild dies a moment later
    await _wait_for(lambda: not [pid for pid in pids if _alive(pid)], timeout=5)
    text = out.getvalue()
    assert "stubborn * still running 0.5s after SIGTERM; sending SIGKILL" in text
    assert "stubborn * stopped: killed by SIGKILL" in text
    assert "polite   * stopped: killed by SIGTERM" in text
    assert supervisor.restarts == {"stubborn": 0, "polite": 0}


async def test_missing_program_is_reported_and_retried(tmp_path: Path) -> None:
    out = io.StringIO()
    child = ChildSpec("ghost", (str(tmp_path / "does-not-exist"),))
    supervisor = Supervisor([child], backoff=Backoff(initial=0.05, maximum=0.05), out=out)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await _wait_for(lambda: supervisor.restarts["ghost"] >= 2)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "ghost * could not start" in out.getvalue()


async def test_supervisor_without_children_runs_until_stopped() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(Supervisor([]).run(stop))
    await asyncio.sleep(0.1)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)

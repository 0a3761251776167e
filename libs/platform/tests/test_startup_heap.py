"""A service process freezes its start-up heap once it serves (`SWITCHBOARD_GC_FREEZE`).

Issue 7 (p99 latency): a full garbage collection over the ~100,000 objects a service holds
after start-up paused intake for 70-110 ms under load; frozen, they are skipped
(bench/README.md). Checked on a real process, as the images run it.
"""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest

from switchboard_platform.serve import freeze_startup_heap
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.pytest_plugin import ServerEndpoints


def _frozen_lines(process: ServiceProcess) -> list[dict[str, object]]:
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if "start-up heap frozen" in line]


@pytest.mark.parametrize("setting", ["true", "false"])
def test_a_started_service_freezes_its_heap_unless_told_not_to(
    servers: ServerEndpoints, tmp_path: Path, setting: str
) -> None:
    process = ServiceProcess(
        "intake",
        "switchboard_intake",
        kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
        mongodb_url=servers.mongodb_url,
        log_dir=tmp_path,
        database=f"heap_{setting}",
        extra_env={"SWITCHBOARD_GC_FREEZE": setting},
    )
    with process:  # started and ready
        assert process.terminate() == 0  # a clean shutdown, too
    frozen = _frozen_lines(process)
    if setting == "false":
        assert frozen == []
        return
    (line,) = frozen
    assert isinstance(line["frozen_objects"], int)
    assert line["frozen_objects"] > 10_000  # modules, classes, functions: all of start-up


class _Node:
    """An object that can be in a reference cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.me = self


def test_a_frozen_cycle_outlives_collections_and_a_later_one_does_not() -> None:
    before = _Node()
    watch_before = weakref.ref(before)
    try:
        assert freeze_startup_heap() > 0
        after = _Node()
        watch_after = weakref.ref(after)
        del before, after
        gc.collect()
        assert watch_after() is None  # created after the freeze: collected as ever
        assert watch_before() is not None  # frozen: full collections skip it
    finally:
        gc.unfreeze()
    gc.collect()
    assert watch_before() is None

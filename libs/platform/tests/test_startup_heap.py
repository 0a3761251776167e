"""A service process freezes its start-up heap once it serves (`SWITCHBOARD_GC_FREEZE`).

Issue 7 (p99 latency): a full garbage collection over the ~100,000 objects a service holds
after start-up paused intake for 70-110 ms under load; frozen, they are skipped
(bench/README.md). Checked on a real process, as the images run it.
"""

from __future__ import annotations

import gc
import json
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


def test_freezing_leaves_only_later_objects_to_the_collector() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 0
        later = [object() for _ in range(10)]
        assert all(gc.is_tracked(x) is False for x in later)  # plain objects: not tracked
        young = [[i] for i in range(10)]
        assert gc.get_freeze_count() == frozen  # created after the freeze: not frozen
        assert all(gc.is_tracked(x) for x in young)
    finally:
        gc.unfreeze()

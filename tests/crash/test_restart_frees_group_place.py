"""A process restarted after SIGKILL frees the place its dead predecessor held in its groups.

Issue 7 §3 (back in service fast). A killed consumer stays a group member until its session
expires, and the group cannot settle before: a restart waited that out (12.7 s on the
embedded broker). With `SWITCHBOARD_STATE_DIR` the restarted process reads the member id
its predecessor recorded and removes that member before joining (docs/decisions/0016).

The session is the tests' 6 s with heartbeats every 1.5 s, so the dead member is still in
the group for seconds after the kill: the test sees it there, then sees the restarted
process remove exactly that member and take its place. How fast that is gets measured,
not asserted, in `bench/` and `test_kill_nine.py`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from switchboard_dev.suite import running_suite
from switchboard_platform.group_member import MemberRecord

pytestmark = pytest.mark.slow

GROUP = "notes.call.received"


async def _members(bootstrap_servers: str, group: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups
    return {member[0] for member in described[5]}


def _removals(log: Path) -> list[str]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if "removed the group member" in line:
            entry = json.loads(line)
            if entry.get("group") == GROUP:
                found.append(entry["member_id"])
    return found


def test_a_notes_process_restarted_after_sigkill_removes_its_dead_member_and_takes_its_place(
    tmp_path: Path,
) -> None:
    with running_suite(tmp_path, replicas={"notes": 1}) as suite:
        notes = suite.notes
        bootstrap = suite.kafka.bootstrap_servers
        record = MemberRecord(Path(notes.env["SWITCHBOARD_STATE_DIR"]), GROUP)
        first = record.read()
        assert first is not None, "a joined consumer records the member id it was given"
        assert asyncio.run(_members(bootstrap, GROUP)) == {first}

        notes.kill()
        # no LeaveGroup was sent: the coordinator still counts the dead process in
        assert first in asyncio.run(_members(bootstrap, GROUP))
        assert record.read() == first

        notes.start()  # ready = every consumer joined its group again
        second = record.read()
        assert second is not None
        assert second != first
        assert _removals(notes.log_path) == [first]
        assert asyncio.run(_members(bootstrap, GROUP)) == {second}

        notes.terminate()  # SIGTERM: consumers leave their groups, then the process ends
        assert "service stopped" in notes.log_tail()
        assert record.read() is None, "a process that left its group leaves nothing to remove"

"""A replica's place in its consumer groups, remembered across a crash (`SWITCHBOARD_STATE_DIR`).

A process that dies without leaving its group (SIGKILL, the OOM killer) stays a member
until its session expires, and until then the group cannot settle: the restarted
process's join waits for the dead member (on the embedded broker 11 to 13 s instead of 3 s).
So each consumer writes the member id the coordinator gave it into the replica's state
directory whenever it is assigned partitions, and a starting consumer that finds one
there first sends the LeaveGroup its predecessor could not send, then joins.

The directory must belong to one replica: a record read by another replica would remove
a live member, which then rejoins (a needless rebalance; delivery stays at-least-once).
With static membership (`KAFKA_GROUP_INSTANCE_ID`) the broker itself replaces the old
member, and none of this runs (docs/decisions/0016).
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.protocol.group import LeaveGroupRequest

from .state_dir import read_state, remove_state, write_state

log = logging.getLogger(__name__)

REMOVE_TIMEOUT_S = 5.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class MemberRecord:
    """The member id one consumer group knows this replica by, in a file of its state dir."""

    def __init__(self, state_dir: Path, group_id: str) -> None:
        self.path = state_dir / f"kafka-member.{_UNSAFE.sub('_', group_id)}"

    def read(self) -> str | None:
        """The recorded member id, if a previous process of this replica left one."""
        return read_state(self.path)

    def write(self, member_id: str) -> None:
        """Record `member_id` (a failure means a restart waits out the session, as before)."""
        write_state(self.path, member_id)

    def clear(self) -> None:
        """Forget the member id: the process left its group itself."""
        remove_state(self.path)


async def remove_member(
    group_id: str,
    member_id: str,
    *,
    bootstrap_servers: str,
    security: dict[str, Any],
    timeout_s: float = REMOVE_TIMEOUT_S,
) -> None:
    """Send the group's coordinator a LeaveGroup for `member_id` (a dead predecessor's).

    A member that already left or expired is unknown to the coordinator; that is fine.
    Raises on a broker that cannot be reached in `timeout_s`.
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        client_id="switchboard-group-member",
        request_timeout_ms=int(timeout_s * 1000),
        **security,
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            node = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
            response = await client.send(node, LeaveGroupRequest(group_id, member_id))
    finally:
        await client.close()
    log.info(
        "removed the group member a previous process of this replica left behind",
        extra={"group": group_id, "member_id": member_id, "error_code": response.error_code},
    )


def current_member_id(consumer: Any) -> str | None:
    """The member id aiokafka's group coordinator holds (aiokafka has no public accessor)."""
    coordinator = getattr(consumer, "_coordinator", None)
    member_id = getattr(coordinator, "member_id", None)
    return member_id if isinstance(member_id, str) and member_id else None

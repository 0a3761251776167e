"""A process restarted after SIGKILL publishes at once: it takes its predecessor's relay lease.

Issue 7 §3 (back in service fast). The killed process held its service's outbox relay lease
(docs/decisions/0009), and a lease of a process that cannot release it runs out only after
`OUTBOX_LEASE_S`: until then no relay publishes, and every note the restarted process makes
waits unannounced. With `SWITCHBOARD_STATE_DIR` a replica holds the lease under an owner id
kept there, so its restarted process renews the lease as its own.

The lease here is 60 s. The test captures a call after the restart and sees its
`note.created` published (the note's outbox cleared) while the dead process's lease still
had time to run: proof the restarted process took it back rather than waited it out.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from switchboard_dev.suite import create_tenant, post_calls, running_suite
from switchboard_platform.outbox import SINCE
from switchboard_platform.outbox_relay import LEASES, OWNER_FILE
from switchboard_platform.testing.polling import wait_until

pytestmark = pytest.mark.slow

NUMBER = "+4924112345699"


def test_a_notes_process_restarted_after_sigkill_takes_its_relay_lease_back_at_once(
    tmp_path: Path,
) -> None:
    with running_suite(tmp_path, env={"OUTBOX_LEASE_S": "60"}) as suite:
        notes = suite.notes
        create_tenant(suite.intake.url, NUMBER)
        mongo: MongoClient[dict[str, Any]] = MongoClient(suite.mongo.url, tz_aware=True)
        leases, notes_db = mongo["notes"][LEASES], mongo["notes"].notes
        state_dir = Path(notes.env["SWITCHBOARD_STATE_DIR"])

        def lease() -> dict[str, Any] | None:
            return leases.find_one({"_id": "relay"})

        owner = wait_until(lease, timeout_s=30, what="the relay's lease")["owner"]
        assert (state_dir / OWNER_FILE).read_text().strip() == owner

        notes.kill()  # no flush, no release: the lease stays for up to 60 s
        dead = lease()
        assert dead is not None
        assert dead["owner"] == owner
        dead_lease_ends = float(dead["expires_at"])

        notes.start()
        result = asyncio.run(post_calls(suite.intake.url, NUMBER, total=1, rate_per_s=1))
        (call_id,) = result.accepted

        def published() -> bool:
            note = notes_db.find_one({"call_id": call_id})
            return note is not None and SINCE not in note  # made, announced and cleared

        wait_until(published, timeout_s=45, what="the note's note.created")
        announced_at = time.time()
        assert announced_at < dead_lease_ends, "announced only after the dead lease ran out"
        assert (lease() or {}).get("owner") == owner
        mongo.close()

"""A participant killed with SIGKILL in the middle of a retention sweep (issue 11, decision 0013).

notes runs as a real process; the test seeds its database with 30,000 notes past their
retention and 200 recent ones, orders their erasure on `retention.due` (with a legal hold,
so the participant takes its checked path: chunks of 2,000 deleted by id, each counted),
and kills notes as soon as the first chunk is counted. The order was not answered, so its
offset was not committed: the restarted process gets it again, resumes from the answer
document it had started, deletes the rest, and answers once. At most the count of the
chunk in hand when the kill came can be missing from the receipt; no note is left behind.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from switchboard_contracts import encode, make_event
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.retention import (
    CategoryScope,
    LegalHold,
    RetentionCompleted,
    RetentionDue,
    RetentionReason,
)
from switchboard_dev.suite import running_suite
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.polling import wait_until
from switchboard_platform.testing.topics import collect_events

pytestmark = pytest.mark.slow

OLD, RECENT, HELD = 30_000, 200, 5
CHUNK = 2_000  # the participant's chunk (Inventory.chunk)
NOW = datetime.now(UTC)


def _note(tenant: str, phone: str, days_ago: int) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "tenant_id": tenant,
        "category": "call_data",
        "retention_from": NOW - timedelta(days=days_ago),
        "caller": {"phone": phone, "name": "Erika Muster"},
        "concern": "Rückruf erbeten",
    }


def test_r_ret_1_notes_killed_mid_sweep_erases_everything_after_restart_and_answers_once(
    tmp_path: Path,
) -> None:
    tenant = uuid.uuid4().hex[:24]
    held_phone = "+4917000000001"  # no old note has it
    with running_suite(tmp_path, replicas={"notes": 1}) as suite:
        mongo: MongoClient[dict[str, Any]] = MongoClient(suite.mongo.url, tz_aware=True)
        db = mongo["notes"]
        old = [_note(tenant, f"+49151{i:08d}", days_ago=120) for i in range(OLD)]
        old += [_note(tenant, held_phone, days_ago=120) for _ in range(HELD)]
        recent = [_note(tenant, "+4915199999999", days_ago=1) for _ in range(RECENT)]
        for start in range(0, len(old), 5_000):
            db.notes.insert_many(old[start : start + 5_000], ordered=False)
        db.notes.insert_many(recent, ordered=False)

        order = RetentionDue(
            request_id=uuid.uuid4().hex,
            scope=CategoryScope(
                kind="category",
                category=DataCategory.CALL_DATA,
                cutoff=NOW - timedelta(days=60),
                tenant_id=tenant,
            ),
            reason=RetentionReason.RETENTION_POLICY,
            issued_at=NOW,
            holds=(
                LegalHold(
                    hold_id="audit-1",
                    reason="R-RET-5: tax audit",
                    tenant_id=tenant,
                    subject=SubjectId(kind=SubjectKind.PHONE, value=held_phone),
                ),
            ),
        )
        answer_id = f"retention:{order.request_id}"
        bootstrap = suite.kafka.bootstrap_servers
        event = make_event(order, tenant_id=tenant, source="/switchboard/retention")
        asyncio.run(produce(bootstrap, [encode(event)]))

        def first_chunk_counted() -> bool:
            doc = db.retention_answers.find_one({"_id": answer_id})
            return doc is not None and sum((doc.get("erased") or {}).values()) > 0

        wait_until(first_chunk_counted, timeout_s=60, what="the first chunk erased", every_s=0.002)
        suite.notes.kill()

        interrupted = db.retention_answers.find_one({"_id": answer_id})
        assert interrupted is not None
        assert interrupted["done"] is False, "the sweep ended before the kill: nothing proven"
        left_at_kill = db.notes.count_documents({"tenant_id": tenant})
        assert left_at_kill > RECENT + HELD, "the kill came after the last chunk"

        suite.notes.start()
        wait_until(
            lambda: (db.retention_answers.find_one({"_id": answer_id}) or {}).get("done"),
            timeout_s=90,
            what="the answer",
            every_s=0.1,
        )
        answers = asyncio.run(
            collect_events(bootstrap, "retention.completed", tenant=tenant, expect=1, settle_s=3.0)
        )
        # whole documents: nx-27017 answers a projection on `caller.phone` with a flat key
        remaining = list(db.notes.find({"tenant_id": tenant}))
        mongo.close()

    assert len(remaining) == RECENT + HELD, f"{len(remaining) - RECENT - HELD} due notes left"
    phones = sorted({d["caller"]["phone"] for d in remaining})
    assert phones == sorted({held_phone, "+4915199999999"}), "a recent or held note was erased"
    mine = [a for a in answers if a.data.request_id == order.request_id]
    assert len(mine) == 1, f"answered {len(mine)} times"
    receipt = mine[0].data
    assert isinstance(receipt, RetentionCompleted)
    erased = sum(c.count for c in receipt.erased)
    # the chunk being deleted when the kill came may be gone without its count
    assert OLD - CHUNK <= erased <= OLD, erased
    assert sum(c.count for c in receipt.retained) == HELD

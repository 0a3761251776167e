"""Two retention replicas over one database and consumer group (issue 7 §2, decision 0013).

They share the `retention.completed` partitions and the receipt chain. Both append at
once; the chain's next `seq` is its unique `_id`, so a racing writer loses and tries again
on the new head. Every answer is stored once, the chain has no gap and no fork, and it
verifies (R-RET-6).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from switchboard_contracts import encode, make_event
from switchboard_contracts.categories import DataCategory, RecordCount
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.dsr import DataSubjectRight
from switchboard_contracts.retention import RetentionCompleted
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_retention.dsr_store import FRAGMENTS, DsrStore
from switchboard_retention.holds import HoldStore
from switchboard_retention.main import create_app
from switchboard_retention.subject_requests import DsrService, NewRequest
from switchboard_retention.tenants import TenantStore

from ..support import OPERATOR, retention_settings, until

ANSWERS = 60


async def test_r_ret_6_two_replicas_chain_every_answer_once_without_a_fork(
    servers: ServerEndpoints, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    settings = retention_settings(servers)
    db = mongo[settings.mongodb_database]
    answers = [
        make_event(
            RetentionCompleted(
                request_id=f"replicas-{uuid.uuid4().hex[:8]}",
                service=("notes", "intake", "notify")[i % 3],
                erased=(RecordCount(category=DataCategory.CALL_DATA, collection="notes", count=i),),
                completed_at=datetime.now(UTC),
            ),
            tenant_id=uuid.uuid4().hex[:24],  # spread over every partition
            source="/switchboard/test",
        )
        for i in range(ANSWERS)
    ]
    async with running_app(create_app(settings)) as first, running_app(create_app(settings)):
        # each answer twice: a redelivery, possibly handled by the other replica
        await produce(servers.kafka_bootstrap_servers, [encode(e) for e in answers * 2])

        ours = {e.data.request_id for e in answers}

        async def all_stored() -> list[dict[str, Any]] | None:
            # a new group reads the topic from its start: other tests' answers come too
            docs = [d async for d in db.receipts.find({}).sort("seq", 1)]
            return docs if ours <= {d["request_id"] for d in docs} else None

        await until(all_stored, timeout_s=60)
        await asyncio.sleep(1.0)  # a second copy of an answer would be stored about now
        docs = [d async for d in db.receipts.find({}).sort("seq", 1)]
        verdict = (await first.get("/v1/receipts/verify", headers=OPERATOR)).json()

    mine = [d["request_id"] for d in docs if d["request_id"] in ours]
    assert sorted(mine) == sorted(ours), "an answer stored twice, or not at all"
    assert len({(d["request_id"], d["service"]) for d in docs}) == len(docs)
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1)), "a gap or a fork"
    assert verdict["valid"], verdict
    assert verdict["count"] == len(docs)


class _RacedStore(DsrStore):
    """Runs a `tick` once, inside an erasure's erase, before or after it deletes."""

    def __init__(self, db: Any, *, tick_first: bool) -> None:
        super().__init__(db)
        self.tick: Callable[[], Awaitable[None]] | None = None
        self._tick_first = tick_first

    async def erase_fragments(self, **filters: Any) -> int:
        tick, self.tick = self.tick, None  # only the first erase races
        if tick is not None and self._tick_first:
            await tick()
        erased = await super().erase_fragments(**filters)
        if tick is not None and not self._tick_first:
            await tick()
        return erased


@pytest.mark.parametrize("tick_first", [True, False], ids=["tick erases first", "create first"])
async def test_r_dsr_17_an_erasure_answered_twice_still_counts_the_kept_answers_it_erased(
    mongo: AsyncMongoClient[dict[str, Any]], tick_first: bool
) -> None:
    """`create` and the tick (of any replica) both erase the answers kept of the subject's
    access request when the tick reads the request before `create` has answered: one finds
    them, the other nothing, and the 0 must not replace the count (it did, now and then)."""
    db = mongo[f"retention_raced_{uuid.uuid4().hex[:8]}"]
    store = _RacedStore(db, tick_first=tick_first)
    service = DsrService(
        requests=store,
        holds=HoldStore(db),
        tenants=TenantStore(db),
        participants=("notes",),
        answer_timeout_s=60,
        near_due_days=5,
    )
    subject = (SubjectId(kind=SubjectKind.PHONE, value="+4930901820"),)
    access = await service.create(NewRequest(DataSubjectRight.ACCESS, subject), "op")
    for part in range(3):
        await db[FRAGMENTS].insert_one(
            {"_id": f"kept-{part}", "request_id": access["_id"], "category": "call_data"}
        )
    store.tick = lambda: service.tick(datetime.now(UTC))
    erasure = await service.create(NewRequest(DataSubjectRight.ERASURE, subject), "op")
    assert store.tick is None  # the tick ran, inside the erase
    assert erasure["parts"]["retention"]["counts"] == [
        {"category": "call_data", "collection": FRAGMENTS, "count": 3}
    ]
    assert erasure["answered"] == ["retention"]
    assert await db[FRAGMENTS].count_documents({}) == 0

"""The sweeps collection: each sweep, its orders (published from its outbox) and who answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_platform.mongo import Document, MongoDatabase, all_of
from switchboard_platform.outbox import outbox_fields_excluded, with_outbox

from .domain import SweepStatus

SWEEPS = "sweeps"
INDEXES: dict[str, Sequence[IndexModel]] = {
    SWEEPS: [
        IndexModel([("order_ids", ASCENDING)], name="by_order"),
        IndexModel([("status", ASCENDING), ("deadline_ms", ASCENDING)], name="waiting"),
        IndexModel([("issued_ms", DESCENDING)], name="newest_first"),
    ],
}


class SweepStore:
    """Sweeps and the answers they wait for; every write is one document."""

    def __init__(self, db: MongoDatabase) -> None:
        self._sweeps = db[SWEEPS]

    async def insert(self, doc: Document, events: Sequence[Event[Any]]) -> bool:
        """Store a sweep with its orders to publish; False if that sweep id exists."""
        try:
            await self._sweeps.insert_one(with_outbox(doc, events))
        except DuplicateKeyError:
            return False
        return True

    async def exists(self, sweep_id: str) -> bool:
        """Whether a sweep with this id was stored."""
        return await self._sweeps.find_one({"_id": sweep_id}, {"_id": 1}) is not None

    async def get(self, sweep_id: str) -> Document | None:
        """One sweep, without outbox bookkeeping."""
        return await self._sweeps.find_one({"_id": sweep_id}, outbox_fields_excluded())

    async def recent(self, limit: int) -> list[Document]:
        """The newest sweeps first."""
        cursor = self._sweeps.find({}, outbox_fields_excluded()).sort("issued_ms", -1)
        return [doc async for doc in cursor.limit(limit)]

    async def answered(self, request_id: str, key: str) -> Document | None:
        """Record an answer to one of a sweep's orders; the sweep after it, if any."""
        # found by a read, written by `_id`: nx-27017 misapplies writes filtered by `$in`
        found = await self._sweeps.find_one({"order_ids": {"$in": [request_id]}}, {"_id": 1})
        if found is None:
            return None
        return await self._sweeps.find_one_and_update(
            {"_id": found["_id"]},
            {"$addToSet": {"answered": key}},
            projection=outbox_fields_excluded(),
            return_document=ReturnDocument.AFTER,
        )

    async def set_own_erased(self, sweep_id: str, count: int) -> None:
        """How many of its own kept answers the sweep erased."""
        await self._sweeps.update_one({"_id": sweep_id}, {"$set": {"own_erased": count}})

    async def set_status(self, sweep_id: str, status: SweepStatus, at_ms: int) -> None:
        """Move a sweep to `status` (a completed sweep stays completed)."""
        await self._sweeps.update_one(
            all_of({"_id": sweep_id}, {"status": {"$ne": str(SweepStatus.COMPLETED)}}),
            {"$set": {"status": str(status), "changed_ms": at_ms}},
        )

    async def expire(self, now_ms: int) -> int:
        """Sweeps still running past their answer deadline become incomplete."""
        result = await self._sweeps.update_many(
            all_of({"status": str(SweepStatus.RUNNING)}, {"deadline_ms": {"$lt": now_ms}}),
            {"$set": {"status": str(SweepStatus.INCOMPLETE), "changed_ms": now_ms}},
        )
        return result.modified_count

    async def count(self, status: SweepStatus) -> int:
        """How many sweeps are in `status`."""
        return await self._sweeps.count_documents({"status": str(status)})

"""The receipt store (R-RET-6): every `retention.completed`, append-only and hash-chained.

Receipts hold counts and ids, never the erased data. Appending takes the next sequence
number as `_id`: of two writers racing for it (parallel partitions, replicas) one wins and
the other reads the new head and tries again. A service's second answer to the same order
(a redelivery) is stored once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts.retention import RetentionCompleted
from switchboard_platform.mongo import Document, MongoDatabase, all_of

from .chain import GENESIS, ChainCheck, Verdict, receipt_hash
from .domain import utc_now

log = logging.getLogger(__name__)

RECEIPTS = "receipts"
INDEXES: dict[str, Sequence[IndexModel]] = {
    RECEIPTS: [
        IndexModel(
            [("request_id", ASCENDING), ("service", ASCENDING)], unique=True, name="one_per_answer"
        ),
        # chain order: `seq` (also the `_id`), sorted as a number on every server; nx-27017
        # sorts a numeric `_id` as text (1, 10, 11, 2, …; tests/integration/test_embedded_quirks)
        IndexModel([("seq", ASCENDING)], unique=True, name="chain_order"),
    ]
}
MAX_TRIES = 50


def receipt_fields(receipt: RetentionCompleted, event_id: str) -> Document:
    """What is stored (and hashed) of a receipt: ids, counts, times as ISO strings."""
    return {
        "request_id": receipt.request_id,
        "service": receipt.service,
        "event_id": event_id,
        "erased": [c.model_dump(mode="json") for c in receipt.erased],
        "retained": [c.model_dump(mode="json") for c in receipt.retained],
        "completed_at": receipt.completed_at.isoformat(),
        "received_at": utc_now().isoformat(),
    }


class ReceiptStore:
    """Appends receipts to the chain, lists them and verifies the chain."""

    def __init__(self, db: MongoDatabase) -> None:
        self._receipts = db[RECEIPTS]

    async def append(self, receipt: RetentionCompleted, event_id: str) -> int | None:
        """Store a receipt as the chain's next link; None if this answer is stored already."""
        fields = receipt_fields(receipt, event_id)
        for _ in range(MAX_TRIES):
            if await self.find(receipt.request_id, receipt.service) is not None:
                return None
            head = await self._receipts.find_one({}, {"hash": 1}, sort=[("seq", DESCENDING)])
            seq = 1 if head is None else int(head["_id"]) + 1
            prev = GENESIS if head is None else str(head["hash"])
            doc = {"_id": seq, "seq": seq, **fields, "prev_hash": prev}
            doc["hash"] = receipt_hash(doc, prev)
            try:
                await self._receipts.insert_one(doc)
            except DuplicateKeyError:
                continue  # another writer took this seq (or stored this answer): look again
            return seq
        raise RuntimeError("could not append to the receipt chain")

    async def find(self, request_id: str, service: str) -> Document | None:
        """The stored receipt of one service's answer to one order."""
        return await self._receipts.find_one(
            all_of({"request_id": request_id}, {"service": service})
        )

    async def of_orders(self, request_ids: Sequence[str]) -> list[Document]:
        """The receipts answering any of these orders, in chain order."""
        if not request_ids:
            return []
        cursor = self._receipts.find({"request_id": {"$in": list(request_ids)}}).sort("seq", 1)
        return [doc async for doc in cursor]

    async def page(
        self, *, after: int = 0, limit: int = 100, request_id: str | None = None
    ) -> list[Document]:
        """Receipts after sequence number `after`, oldest first."""
        clauses: list[dict[str, Any]] = [{"seq": {"$gt": after}}]
        if request_id is not None:
            clauses.append({"request_id": request_id})
        cursor = self._receipts.find(all_of(*clauses)).sort("seq", 1).limit(limit)
        return [doc async for doc in cursor]

    async def verify(self) -> Verdict:
        """Walk the whole chain from the first receipt; where it breaks, if it does."""
        check = ChainCheck()
        async for doc in self._receipts.find({}).sort("seq", 1):
            if not check.add(doc):
                break
        verdict = check.verdict()
        if not verdict.valid:
            log.error("receipt chain broken", extra={"receipt_seq": verdict.broken_at})
        return verdict

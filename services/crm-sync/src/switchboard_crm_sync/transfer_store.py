"""The transfers collection: the work queue of the transfer loop and the transfer log.

One document per note, connector and operation (its id derived from the three, so a
redelivered event finds it). `due_at` (epoch seconds, a number: nx-27017 keeps `$set`
datetimes as strings) is when it may run next; a claimed transfer is `sending` with
`due_at` at the end of its lease, so one whose replica died is claimed again after it.
Each outcome appends a `log` entry and its `crm.*` event in the same single-document write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_platform.mongo import Document, MongoDatabase, all_of, update_matching
from switchboard_platform.outbox import (
    merge_updates,
    outbox_fields_excluded,
    outbox_update,
    with_outbox,
)
from switchboard_platform.tenancy import one_of_tenant, only_tenant, scoped

from .domain import OPEN_STATUSES, TransferStatus

SERVICE = "crm-sync"
TRANSFERS = "transfers"

INDEXES: dict[str, Sequence[IndexModel]] = {
    TRANSFERS: [
        IndexModel([("status", ASCENDING), ("due_at", ASCENDING)], name="due"),
        IndexModel(
            [("connector_id", ASCENDING), ("status", ASCENDING), ("due_at", ASCENDING)],
            name="connector_due",
        ),
        # (tenant, created_ts): a number, because nx-27017 compares datetimes for equality
        # to the second only (tests/integration/test_embedded_quirks.py)
        IndexModel(
            [("tenant_id", ASCENDING), ("created_ts", DESCENDING)], name="tenant_newest_first"
        ),
        IndexModel([("tenant_id", ASCENDING), ("note_id", ASCENDING)], name="tenant_note"),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    ]
}


class TransferStore:
    """Stores transfers with their log and outbox; tenant reads are scoped and guarded."""

    def __init__(self, db: MongoDatabase) -> None:
        self._coll = db[TRANSFERS]

    async def insert_new(self, doc: Document, events: Sequence[Event[Any]] = ()) -> bool:
        """Store a new transfer; False if it exists (a redelivered event)."""
        try:
            await self._coll.insert_one(with_outbox(doc, events))
        except DuplicateKeyError:
            return False
        return True

    async def due_connectors(self, now: float) -> list[str]:
        """Connectors with transfers due now: pending ones, or claims whose lease ran out.

        Plain top-level conditions (no `$in`, no `$and`): nx-27017 plans them with the
        index and scans for the others, which costs the loop ten times as much.
        """
        due: set[str] = set()
        for status in OPEN_STATUSES:
            due.update(
                await self._coll.distinct(
                    "connector_id", {"status": str(status), "due_at": {"$lte": now}}
                )
            )
        return sorted(due)

    async def claim(
        self, cid: str, *, now: float, count: int, lease_until: float, token: str
    ) -> list[Document]:
        """Take up to `count` of the connector's due transfers, oldest first."""
        claimed: list[Document] = []
        for status in (TransferStatus.PENDING, TransferStatus.SENDING):
            due = {"connector_id": cid, "status": str(status), "due_at": {"$lte": now}}
            cursor = self._coll.find(due, {"_id": 1}).sort("due_at", ASCENDING)
            for tid in [d["_id"] async for d in cursor.limit(count - len(claimed))]:
                doc = await self._coll.find_one_and_update(
                    {"_id": tid, "status": str(status), "due_at": {"$lte": now}},
                    {
                        "$set": {
                            "status": str(TransferStatus.SENDING),
                            "due_at": lease_until,
                            "claim": token,
                        },
                        "$inc": {"attempts": 1},
                    },
                    projection=outbox_fields_excluded(),
                    return_document=ReturnDocument.AFTER,
                )
                if doc is not None:
                    claimed.append(doc)
            if len(claimed) >= count:
                break
        return claimed

    async def finish(
        self,
        tid: str,
        token: str,
        *,
        fields: Document,
        entry: Document | None,
        events: Sequence[Event[Any]] = (),
        unset: Sequence[str] = (),
        attempts_back: bool = False,
    ) -> bool:
        """Write an attempt's outcome, if this worker still holds the claim."""
        parts: list[Document] = [{"$set": fields}]
        if unset:
            parts.append({"$unset": dict.fromkeys(unset, "")})
        if entry is not None:
            parts.append({"$addToSet": {"log": entry}})
        if attempts_back:
            parts.append({"$inc": {"attempts": -1}})
        if events:
            parts.append(outbox_update(events))
        result = await self._coll.update_one(
            all_of({"_id": tid}, {"claim": token}), merge_updates(*parts)
        )
        return result.matched_count == 1

    async def close_open(
        self,
        tid: str,
        *,
        fields: Document,
        entry: Document,
        events: Sequence[Event[Any]],
        unset: Sequence[str] = (),
    ) -> bool:
        """Close a transfer that is pending and not claimed (cancel it); False otherwise."""
        parts: list[Document] = [{"$set": fields}, {"$addToSet": {"log": entry}}]
        if unset:
            parts.append({"$unset": dict.fromkeys(unset, "")})
        parts.append(outbox_update(events))
        result = await self._coll.update_one(
            all_of({"_id": tid}, {"status": str(TransferStatus.PENDING)}),
            merge_updates(*parts),
        )
        return result.matched_count == 1

    async def by_id(self, tid: str) -> Document | None:
        """One transfer, whoever's (for the loop)."""
        return await self._coll.find_one({"_id": tid}, outbox_fields_excluded())

    async def get(self, tenant_id: str, tid: str) -> Document | None:
        """The tenant's transfer `tid`, or None."""
        doc = await self._coll.find_one(scoped(tenant_id, {"_id": tid}), outbox_fields_excluded())
        return one_of_tenant(doc, tenant_id, service=SERVICE, collection=TRANSFERS)

    async def of_note(self, tenant_id: str, note_id: str) -> list[Document]:
        """Every transfer of one note."""
        docs = [
            d
            async for d in self._coll.find(
                scoped(tenant_id, {"note_id": note_id}), outbox_fields_excluded()
            )
        ]
        return only_tenant(docs, tenant_id, service=SERVICE, collection=TRANSFERS)

    async def drop_content(self, tenant_id: str, note_id: str) -> int:
        """Forget the note's content in all its transfers (the note was deleted)."""
        return await update_matching(
            self._coll, scoped(tenant_id, {"note_id": note_id}), {"$unset": {"content": ""}}
        )

    async def open_of_connector(self, cid: str) -> list[str]:
        """Ids of the connector's transfers that are pending (not claimed)."""
        cursor = self._coll.find(
            all_of({"connector_id": cid}, {"status": str(TransferStatus.PENDING)}), {"_id": 1}
        )
        return [d["_id"] async for d in cursor]

    async def reopen(
        self, tenant_id: str, tid: str, *, due_at: float, entry: Document, retry_from: int
    ) -> bool:
        """Make a failed or refused transfer due again (an operator's retry).

        `retry_from` (the attempts so far) starts a fresh count towards the attempt limit.
        """
        closed = {"$in": [str(TransferStatus.FAILED), str(TransferStatus.REFUSED)]}
        result = await self._coll.update_one(
            scoped(tenant_id, {"_id": tid}, {"status": closed}),
            {
                "$set": {
                    "status": str(TransferStatus.PENDING),
                    "due_at": due_at,
                    "retry_from": retry_from,
                },
                "$addToSet": {"log": entry},
            },
        )
        return result.matched_count == 1

    async def page(
        self,
        tenant_id: str,
        *,
        note_id: str | None,
        status: str | None,
        limit: int,
        after: tuple[float, str] | None,
    ) -> list[Document]:
        """Up to `limit` transfers, newest first, after the cursor position."""
        clauses: list[Document] = []
        if note_id is not None:
            clauses.append({"note_id": note_id})
        if status is not None:
            clauses.append({"status": status})
        if after is not None:
            moment, key = after
            clauses.append(
                {
                    "$or": [
                        {"created_ts": {"$lt": moment}},
                        {"$and": [{"created_ts": moment}, {"_id": {"$lt": key}}]},
                    ]
                }
            )
        projection = {**outbox_fields_excluded(), "content": 0, "claim": 0}
        cursor = (
            self._coll.find(scoped(tenant_id, *clauses), projection)
            .sort([("created_ts", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        docs = [d async for d in cursor]
        return only_tenant(docs, tenant_id, service=SERVICE, collection=TRANSFERS)

    @staticmethod
    def cursor_position(doc: Document) -> tuple[float, str]:
        """Where the next page starts after `doc`: (creation epoch seconds, id)."""
        return float(doc["created_ts"]), str(doc["_id"])

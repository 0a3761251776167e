"""Data-subject requests and the services' answers to them (fragments, kept for the export)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId
from switchboard_contracts.dsr import DsrFragment
from switchboard_platform.mongo import Document, MongoDatabase, all_of, delete_matching
from switchboard_platform.outbox import (
    merge_updates,
    outbox_fields_excluded,
    outbox_update,
    with_outbox,
)
from switchboard_platform.subjects import subject_key

from .domain import EXPORTING, DsrStatus

REQUESTS = "dsr_requests"
FRAGMENTS = "dsr_fragments"
INDEXES: dict[str, Sequence[IndexModel]] = {
    REQUESTS: [
        IndexModel([("status", ASCENDING), ("due_ms", ASCENDING)], name="open_by_due"),
        IndexModel([("received_ms", DESCENDING)], name="newest_first"),
    ],
    FRAGMENTS: [
        IndexModel([("request_id", ASCENDING), ("service", ASCENDING)], name="by_request"),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    ],
}
UNFINISHED = [str(DsrStatus.OPEN), str(DsrStatus.PARTIALLY_COMPLETED)]


class DsrStore:
    """Requests with their events (outbox), answers per service, and the exported records."""

    def __init__(self, db: MongoDatabase) -> None:
        self._requests = db[REQUESTS]
        self._fragments = db[FRAGMENTS]

    async def insert(self, doc: Document, events: Sequence[Event[Any]]) -> None:
        """Store a new request with the event that asks the services."""
        await self._requests.insert_one(with_outbox(doc, events))

    async def get(self, request_id: str) -> Document | None:
        """One request, without outbox bookkeeping."""
        return await self._requests.find_one({"_id": request_id}, outbox_fields_excluded())

    async def listed(self, *, status: str | None, limit: int) -> list[Document]:
        """Requests, newest received first."""
        query: Document = {} if status is None else {"status": status}
        cursor = self._requests.find(query, outbox_fields_excluded()).sort("received_ms", -1)
        return [doc async for doc in cursor.limit(limit)]

    async def unfinished(self) -> list[Document]:
        """Requests not completed yet (for deadlines and the gauges)."""
        query = {"status": {"$in": UNFINISHED}}
        return [doc async for doc in self._requests.find(query, outbox_fields_excluded())]

    async def update(
        self,
        request_id: str,
        changes: Document,
        events: Sequence[Event[Any]] = (),
        *,
        unless_answered_by: str | None = None,
    ) -> Document | None:
        """Apply `changes` (update operators), with events to publish; the request after.

        `unless_answered_by`: only while that service's part is not answered yet (else None).
        """
        update = merge_updates(changes, outbox_update(events)) if events else changes
        where: Document = {"_id": request_id}
        if unless_answered_by is not None:
            where["answered"] = {"$nin": [unless_answered_by]}
        return await self._requests.find_one_and_update(
            where,
            update,
            projection=outbox_fields_excluded(),
            return_document=ReturnDocument.AFTER,
        )

    async def mark_overdue(self, request_id: str, at: datetime, reason: str) -> bool:
        """Record, once, that a request went past its deadline and why (R-DSR-T)."""
        result = await self._requests.update_one(
            {"_id": request_id, "overdue": {"$exists": False}},
            {"$set": {"overdue": {"at": at, "reason": reason}}},
        )
        return result.modified_count > 0

    async def keep_fragment(self, fragment: DsrFragment, tenant_id: str, now: datetime) -> None:
        """Keep one fragment's records for the export (a redelivered one is kept once).

        The copies are call data: they leave with it, 60 days after they arrived (R-RET-1).
        """
        phase = "lift" if fragment.lifted else "answer"
        doc = {
            "_id": f"{fragment.request_id}:{fragment.service}:{phase}:{fragment.part}",
            "request_id": fragment.request_id,
            "service": fragment.service,
            "phase": phase,
            "part": fragment.part,
            "parts": fragment.parts,
            "fragment": fragment.model_dump(mode="json"),
            "tenant_id": tenant_id,
            "category": str(DataCategory.CALL_DATA),
            "retention_from": now,
        }
        with contextlib.suppress(DuplicateKeyError):
            await self._fragments.insert_one(doc)

    async def fragments(self, request_id: str, phase: str = "answer") -> list[Document]:
        """The stored fragments of a request, by service and part."""
        cursor = self._fragments.find(all_of({"request_id": request_id}, {"phase": phase})).sort(
            [("service", 1), ("part", 1)]
        )
        return [doc async for doc in cursor]

    async def exported_about(self, keys: set[str], tenant_id: str | None) -> list[str]:
        """The access and portability requests naming any of these subject keys (of this
        tenant, or of all tenants for None, as an erasure order reaches them)."""
        query: Document = {"right": {"$in": [str(r) for r in EXPORTING]}}
        projection = {"identifiers": 1, "tenant_id": 1}
        found = []
        async for doc in self._requests.find(query, projection):
            if tenant_id is not None and doc.get("tenant_id") not in (None, tenant_id):
                continue
            named = {subject_key(SubjectId.model_validate(i)) for i in doc["identifiers"]}
            if named & keys:
                found.append(str(doc["_id"]))
        return found

    async def erase_fragments(
        self,
        *,
        cutoff: datetime | None = None,
        tenant_id: str | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete kept answers (the service's own call data): those whose clock ran out by
        `cutoff`, of one tenant, of some requests, or what all the given filters select."""
        if cutoff is None and tenant_id is None and request_ids is None:
            raise ValueError("erasing every kept answer needs a cutoff, a tenant or requests")
        if request_ids is not None and not request_ids:
            return 0
        clauses: list[Document] = [{"category": str(DataCategory.CALL_DATA)}]
        if cutoff is not None:
            clauses.append({"retention_from": {"$lt": cutoff}})
        if request_ids is not None:
            clauses.append({"request_id": {"$in": list(request_ids)}})
        if tenant_id is not None:
            clauses.append({"tenant_id": tenant_id})
        return await delete_matching(self._fragments, all_of(*clauses))

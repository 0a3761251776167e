"""Transactional outbox: events are stored inside the document whose change they announce.

A use case writes its document and the events about it in ONE single-document write (atomic
in MongoDB without a multi-document transaction), so a crash can never keep the change and
lose the event, or the reverse. `OutboxStore` finds pending events and clears published
ones; `outbox_relay.OutboxRelay` publishes them. See docs/decisions/0002 and 0009.

A document with pending events carries:
- `_outbox`: the encoded events, each with a `seq` (time-ordered across processes);
- `_outbox_since`: the oldest pending `seq` (the relay's sort key, sparsely indexed);
- `_outbox_last`: the `seq` of the newest entry appended. A relay that published everything
  it read clears the document only if `_outbox_last` is still what it read, so an event
  appended meanwhile is never cleared unpublished, whatever another relay did.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from opentelemetry import propagate
from pymongo import IndexModel, UpdateOne

from switchboard_contracts import Event, encode
from switchboard_contracts.categories import DataCategory

from .mongo import Document, MongoDatabase

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
SINCE = "_outbox_since"
LAST = "_outbox_last"
PARKED = "_outbox_parked"
"""Collection of entries set aside after failing to publish for a permanent reason."""
_LEGACY_PENDING = "_outbox_pending"  # a counter of earlier versions, dropped when cleared
PENDING: dict[str, Any] = {SINCE: {"$gt": ""}}
"""Documents with pending events, as a range on the index (`seq` is a non-empty string).

Not `{"$exists": True}`: nx-27017 answers that by scanning the collection (MongoDB uses
the sparse index either way), which made every relay read cost more as a collection grew.
"""
PENDING_COUNT_CAP = 100_000


class _SeqClock:
    """Sequence numbers ordered by time across processes, strictly increasing within one.

    `<microseconds since the epoch, 14 hex digits><process node, 8 hex digits>`: events of
    causally ordered writes (the second written after the first was stored) sort in that
    order on every replica, given clocks within the gap (NTP: milliseconds).
    """

    def __init__(self) -> None:
        self._last = 0
        self._node = secrets.token_hex(4)

    def next(self) -> str:
        now = time.time_ns() // 1000
        self._last = max(now, self._last + 1)
        return f"{self._last:014x}{self._node}"

    def wrote(self, seq: str) -> bool:
        """Whether this clock (this process) gave out `seq`."""
        return seq.endswith(self._node)


_CLOCK = _SeqClock()


def written_here(seq: str) -> bool:
    """Whether the entry with this `seq` was written by this process, not another replica
    (or this replica's process before a restart)."""
    return _CLOCK.wrote(seq)


def seq_time(seq: str) -> datetime | None:
    """When the entry with this `seq` was written (None for a seq of an older format)."""
    try:
        return datetime.fromtimestamp(int(seq[:14], 16) / 1_000_000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _entry(event: Event[Any]) -> Document:
    record = encode(event)
    trace: dict[str, str] = {}
    propagate.inject(trace)
    return {
        "id": event.id,
        "seq": _CLOCK.next(),
        "topic": record.topic,
        "key": record.key.decode(),
        "value": Binary(record.value),
        "headers": record.headers,
        "trace": trace,
    }


def with_outbox(document: Document, events: Sequence[Event[Any]]) -> Document:
    """Return `document` carrying `events` as pending, ready for `insert_one`.

    Without events the document still gets an (empty) outbox: later updates only append,
    and nx-27017 ignores `$addToSet` onto a missing field (docs/decisions/0002).
    """
    entries = [_entry(e) for e in events]
    if not entries:
        return {**document, OUTBOX: []}
    return {**document, OUTBOX: entries, SINCE: entries[0]["seq"], LAST: entries[-1]["seq"]}


def outbox_update(events: Sequence[Event[Any]]) -> Document:
    """Update operators that append `events` to a document's outbox; merge with your `$set`.

    The document must already carry an outbox (it was inserted with `with_outbox`).
    `$addToSet` rather than `$push`: entries are unique, so both mean the same on MongoDB,
    but nx-27017 stores `$push`ed subdocuments as JSON strings (docs/decisions/0002).
    """
    entries = [_entry(e) for e in events]
    return {
        "$addToSet": {OUTBOX: {"$each": entries}},
        "$min": {SINCE: entries[0]["seq"]},
        "$set": {LAST: entries[-1]["seq"]},
    }


def merge_updates(*updates: Document) -> Document:
    """Combine update documents operator by operator (e.g. your `$set` and `outbox_update`)."""
    merged: Document = {}
    for update in updates:
        for operator, fields in update.items():
            merged[operator] = {**merged.get(operator, {}), **fields}
    return merged


def outbox_fields_excluded() -> Document:
    """Projection that leaves the outbox bookkeeping out of a read."""
    return {OUTBOX: 0, SINCE: 0, LAST: 0, _LEGACY_PENDING: 0}


def outbox_indexes() -> list[IndexModel]:
    """Indexes that let the relay find pending events with one query per collection."""
    return [IndexModel([(SINCE, 1)], sparse=True, name="outbox_pending")]


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """One event waiting in a document's outbox."""

    collection: str
    doc_id: Any
    entry: Document

    @property
    def seq(self) -> str:
        """The entry's place in publishing order."""
        return str(self.entry.get("seq", ""))

    @property
    def id(self) -> str:
        """The event id."""
        return str(self.entry.get("id", ""))


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """The next events to publish, in order, and what is known of the rest."""

    entries: list[PendingEntry]
    last_seen: dict[tuple[str, Any], str | None]
    """Each document read, with the `_outbox_last` it had when read."""
    complete: frozenset[tuple[str, Any]]
    """Documents all of whose entries are in `entries`."""
    more: bool
    """Whether pending documents were left unread (the batch was full)."""


class OutboxStore:
    """Reads pending events of a service's collections and removes published ones."""

    def __init__(self, db: MongoDatabase, collections: Iterable[str]) -> None:
        self._db = db
        self._collections = tuple(collections)

    async def pending(self, limit: int, collections: tuple[str, ...] | None = None) -> PendingBatch:
        """Up to `limit` events, oldest first, never one after an older unread event.

        Each collection is read up to `limit` documents in `_outbox_since` order. If a
        collection had more, its last document's `since` is a horizon: an entry newer than
        it could be younger than an entry of a document not read yet, so it waits.
        """
        found: list[PendingEntry] = []
        last_seen: dict[tuple[str, Any], str | None] = {}
        counts: dict[tuple[str, Any], int] = {}
        horizon: str | None = None
        names = collections or self._collections
        if len(names) == 1:  # a woken pass: no task for gather to make
            read = [await self._read_pending(names[0], limit)]
        else:  # concurrently: a poll of three collections took three round trips in a row
            read = await asyncio.gather(*(self._read_pending(name, limit) for name in names))
        for name, docs in zip(names, read, strict=True):
            if len(docs) == limit:
                edge = str(docs[-1].get(SINCE, ""))
                horizon = edge if horizon is None else min(horizon, edge)
            for doc in docs:
                key = (name, doc["_id"])
                entries = [e for e in doc.get(OUTBOX) or [] if isinstance(e, dict)]
                last_seen[key] = doc.get(LAST)
                counts[key] = len(entries)
                found.extend(PendingEntry(name, doc["_id"], e) for e in entries)
        found.sort(key=lambda p: p.seq)
        if horizon is not None:
            found = [p for p in found if p.seq <= horizon]
        chosen = found[:limit]
        taken: dict[tuple[str, Any], int] = {}
        for p in chosen:
            taken[(p.collection, p.doc_id)] = taken.get((p.collection, p.doc_id), 0) + 1
        complete = frozenset(k for k, n in taken.items() if n == counts[k])
        more = horizon is not None or len(found) > limit
        return PendingBatch(chosen, last_seen, complete, more)

    async def _read_pending(self, name: str, limit: int) -> list[Document]:
        cursor = (
            self._db[name].find(PENDING, {OUTBOX: 1, LAST: 1, SINCE: 1}).sort(SINCE, 1).limit(limit)
        )
        return [doc async for doc in cursor]

    async def clear(self, batch: PendingBatch, published: Sequence[PendingEntry]) -> None:
        """Remove `published` entries of `batch` from their documents."""
        taken: dict[tuple[str, Any], int] = {}
        for p in batch.entries:
            taken[(p.collection, p.doc_id)] = taken.get((p.collection, p.doc_id), 0) + 1
        by_doc: dict[tuple[str, Any], list[str]] = {}
        for p in published:
            by_doc.setdefault((p.collection, p.doc_id), []).append(p.id)
        for collection in {c for c, _ in by_doc}:
            docs = {key: ids for key, ids in by_doc.items() if key[0] == collection}
            whole = [
                key
                for key, ids in docs.items()
                if key in batch.complete and len(ids) == taken[key] and batch.last_seen.get(key)
            ]
            leftover = await self._clear_whole(collection, [k[1] for k in whole], batch)
            rest = [k[1] for k in docs if k not in whole]
            for doc_id in [*leftover, *rest]:
                await self._clear_some(collection, doc_id, docs[(collection, doc_id)])

    async def _clear_whole(
        self, collection: str, doc_ids: list[Any], batch: PendingBatch
    ) -> list[Any]:
        """One write for every document nothing was appended to since the read.

        Returns the documents that still have pending entries (appended meanwhile).
        """
        if not doc_ids:
            return []
        # One conditional update per document, in one round trip. (Not `update_many` with
        # `_outbox_last: {$in: [...]}`: nx-27017 applies a multi-document write filtered by
        # `$in` on a field other than `_id` to the wrong documents; docs/decisions/0009.)
        cleared = {"$set": {OUTBOX: []}, "$unset": {SINCE: "", LAST: "", _LEGACY_PENDING: ""}}
        writes = [
            UpdateOne({"_id": d, LAST: batch.last_seen[(collection, d)]}, cleared) for d in doc_ids
        ]
        result = await self._db[collection].bulk_write(writes, ordered=False)
        if result.matched_count == len(doc_ids):
            return []
        cursor = self._db[collection].find({"_id": {"$in": doc_ids}, **PENDING}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def _clear_some(self, collection: str, doc_id: Any, ids: list[str]) -> None:
        """Remove some entries of one document; recompute (or drop) its `since`."""
        coll = self._db[collection]
        await coll.update_one({"_id": doc_id}, {"$pull": {OUTBOX: {"id": {"$in": ids}}}})
        for _ in range(5):
            doc = await coll.find_one({"_id": doc_id}, {OUTBOX: 1, LAST: 1})
            if doc is None:
                return
            remaining = [e for e in doc.get(OUTBOX) or [] if isinstance(e, dict)]
            guard: Document = {"_id": doc_id, LAST: doc.get(LAST)}
            if remaining:
                since = min(str(e.get("seq", "")) for e in remaining)
                update: Document = {"$set": {SINCE: since}}
            else:
                update = {"$unset": {SINCE: "", LAST: "", _LEGACY_PENDING: ""}}
            if (await coll.update_one(guard, update)).matched_count == 1:
                return
        log.warning("outbox entry cleared, but the document keeps changing; it stays pending")

    async def park(self, entry: PendingEntry, reason: str, service: str) -> None:
        """Set an entry aside (kept for an operator) and remove it from its document.

        The event may carry personal data: the parked copy is call data of its tenant, with
        a clock from when it was set aside, so sweeps and offboarding erase it (R-RET-1).
        """
        parked_at = datetime.now(UTC)
        headers = entry.entry.get("headers")
        tenant = headers.get("ce_tenantid") if isinstance(headers, dict) else None
        await self._db[PARKED].update_one(
            {"_id": entry.id},
            {
                "$setOnInsert": {
                    "service": service,
                    "collection": entry.collection,
                    "doc_id": entry.doc_id,
                    "entry": entry.entry,
                    "reason": reason,
                    "parked_at": parked_at,
                    "tenant_id": tenant or entry.entry.get("key"),
                    "category": str(DataCategory.CALL_DATA),
                    "retention_from": parked_at,
                }
            },
            upsert=True,
        )
        await self._clear_some(entry.collection, entry.doc_id, [entry.id])

    async def parked_count(self) -> int:
        """How many entries are parked."""
        return await self._db[PARKED].count_documents({})

    async def pending_documents(self, cap: int = PENDING_COUNT_CAP) -> int:
        """Documents with pending events, in every collection, up to `cap` each (a gauge).

        Counted by reading their ids through the index: `count_documents` is an aggregation
        that nx-27017 answers with a full collection scan (hundreds of ms at 10,000 calls).
        """
        total = 0
        for name in self._collections:
            cursor = self._db[name].find(PENDING, {"_id": 1}).limit(cap)
            total += len([doc async for doc in cursor])
        return total

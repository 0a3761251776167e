"""Transactional outbox: events are stored inside the document whose change they announce.

A use case writes its document and the events about it in ONE single-document write (atomic
in MongoDB without a multi-document transaction), so a crash can never keep the change and
lose the event, or the reverse. The relay publishes pending events in order and then removes
them; a crash in between publishes them again, which idempotent consumers absorb.
See docs/decisions/0002-outbox-inside-the-document.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bson import Binary, ObjectId
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate
from pymongo import IndexModel, UpdateOne

from switchboard_contracts import Event, encode

from .metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from .mongo import Document, MongoDatabase

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
PENDING = "_outbox_pending"
SINCE = "_outbox_since"


def _entry(event: Event[Any]) -> Document:
    record = encode(event)
    trace: dict[str, str] = {}
    propagate.inject(trace)
    return {
        "id": event.id,
        "seq": str(ObjectId()),
        "topic": record.topic,
        "key": record.key.decode(),
        "value": Binary(record.value),
        "headers": record.headers,
        "trace": trace,
    }


def with_outbox(document: Document, events: Sequence[Event[Any]]) -> Document:
    """Return `document` carrying `events` as pending, ready for `insert_one`."""
    entries = [_entry(e) for e in events]
    return {**document, OUTBOX: entries, PENDING: len(entries), SINCE: entries[0]["seq"]}


def outbox_update(events: Sequence[Event[Any]]) -> Document:
    """Update operators that append `events` to a document's outbox; merge with your `$set`.

    The document must already carry an outbox (it was inserted with `with_outbox`).
    `$addToSet` rather than `$push`: entries are unique, so both mean the same on MongoDB,
    but nx-27017 stores `$push`ed subdocuments as JSON strings (docs/decisions/0002).
    """
    entries = [_entry(e) for e in events]
    return {
        "$addToSet": {OUTBOX: {"$each": entries}},
        "$inc": {PENDING: len(entries)},
        "$min": {SINCE: entries[0]["seq"]},
    }


def outbox_fields_excluded() -> Document:
    """Projection that leaves the outbox bookkeeping out of a read."""
    return {OUTBOX: 0, PENDING: 0, SINCE: 0}


@dataclass(frozen=True, slots=True)
class _Pending:
    collection: str
    doc_id: Any
    entry: Document


class OutboxRelay:
    """Publishes the pending events of the given collections, oldest first, then clears them."""

    def __init__(
        self,
        db: MongoDatabase,
        collections: Iterable[str],
        service: str,
        broker: KafkaBroker,
        *,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
        publish_timeout_s: float = 10.0,
    ) -> None:
        self._db = db
        self._service = service
        self._collections = tuple(collections)
        self._broker = broker
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.healthy = True

    def notify(self) -> None:
        """Wake the relay now: a use case has just written events."""
        self._wake.set()

    def start(self) -> None:
        """Run the relay loop in the background."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, *, flush_timeout_s: float = 10.0) -> None:
        """Publish what is pending (bounded by `flush_timeout_s`), then stop the loop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, flush_timeout_s)
            except TimeoutError:
                log.warning("outbox relay did not flush in time; pending events stay stored")
            self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                # clear before draining: a write notified during the drain wakes the next pass
                self._wake.clear()
                published = await self.drain_once()
                self.healthy = True
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:  # any broker or database failure: back off, keep the events
                self.healthy = False
                log.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping and published == 0:
                return
            if published >= self._batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def _pending(self) -> list[_Pending]:
        found: list[_Pending] = []
        for name in self._collections:
            cursor = (
                self._db[name]
                .find({SINCE: {"$exists": True}, PENDING: {"$gt": 0}}, {OUTBOX: 1})
                .sort(SINCE, 1)
                .limit(self._batch_size)
            )
            async for doc in cursor:
                found.extend(_Pending(name, doc["_id"], e) for e in doc.get(OUTBOX, []))
        found.sort(key=lambda p: p.entry["seq"])
        return found[: self._batch_size]

    async def drain_once(self) -> int:
        """Publish one batch of pending events; return how many were published."""
        pending = await self._pending()
        OUTBOX_BACKLOG.labels(service=self._service).set(len(pending))
        if not pending:
            return 0
        async with asyncio.timeout(self._publish_timeout_s):
            futures = [await self._publish(p.entry) for p in pending]
            await asyncio.gather(*futures)
        await self._clear(pending)
        for p in pending:
            OUTBOX_PUBLISHED.labels(service=self._service, topic=p.entry["topic"]).inc()
        return len(pending)

    async def _publish(self, entry: Document) -> asyncio.Future[Any]:
        token = otel_context.attach(propagate.extract(entry.get("trace") or {}))
        try:
            return await self._broker.publish(
                bytes(entry["value"]),
                entry["topic"],
                key=entry["key"].encode(),
                headers=dict(entry["headers"]),
                no_confirm=True,
            )
        finally:
            otel_context.detach(token)

    async def _clear(self, published: list[_Pending]) -> None:
        by_doc: dict[tuple[str, Any], list[str]] = {}
        for p in published:
            by_doc.setdefault((p.collection, p.doc_id), []).append(p.entry["id"])
        writes: dict[str, list[UpdateOne]] = {}
        for (collection, doc_id), ids in by_doc.items():
            writes.setdefault(collection, []).extend(
                [
                    UpdateOne(
                        {"_id": doc_id},
                        {"$pull": {OUTBOX: {"id": {"$in": ids}}}, "$inc": {PENDING: -len(ids)}},
                    ),
                    UpdateOne({"_id": doc_id, PENDING: {"$lte": 0}}, {"$unset": {SINCE: ""}}),
                ]
            )
        for collection, ops in writes.items():
            await self._db[collection].bulk_write(ops, ordered=True)


def outbox_indexes() -> list[IndexModel]:
    """Indexes that let the relay find pending events with one query per collection."""
    return [IndexModel([(SINCE, 1)], sparse=True, name="outbox_pending")]

"""The delivery ledger: one document per note and recipient, the idempotency record of sending.

A delivery is written (`pending`) before anything is sent and marked (`sent`, `failed`, …)
right after, in the same write as the `notification.*` event that reports it (outbox).
Sending works on claims: a sender sets `lease_until`/`lease_owner` on due entries, sends,
and marks only entries it still owns; an entry whose claim lapsed (its process died) is
due again. Times that are compared in queries are numbers: epoch seconds for the sender (`due_at`,
`lease_until`, which are `$set` again and again: nx-27017 would store a `$set` datetime as
a string) and epoch milliseconds for paging (`created_ms`: nx-27017 compares datetimes in
filters at whole seconds, so a (time, id) keyset on a datetime skips entries; the
xfail test in tests/integration/test_embedded_quirks.py shows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from switchboard_contracts import Event
from switchboard_contracts.consent import ConsentPurpose
from switchboard_contracts.tenants import Channel
from switchboard_platform.mongo import Document, MongoDatabase, all_of, update_matching
from switchboard_platform.outbox import (
    merge_updates,
    outbox_fields_excluded,
    outbox_update,
    with_outbox,
)
from switchboard_platform.tenancy import only_tenant

from .domain import Delivery, DeliveryStatus
from .repository import RETENTION_INDEX, SERVICE, tenant_query

DELIVERIES = "deliveries"
PENDING = str(DeliveryStatus.PENDING)
_DUPLICATE_KEY = 11000
INDEXES: dict[str, Sequence[IndexModel]] = {
    DELIVERIES: [
        IndexModel([("status", ASCENDING), ("due_at", ASCENDING)], name="due"),
        IndexModel([("tenant_id", ASCENDING), ("created_ms", DESCENDING)], name="tenant_newest"),
        IndexModel([("note_id", ASCENDING)], name="by_note"),
        IndexModel([("recipient", ASCENDING)], name="by_recipient"),
        IndexModel([("lease_instance", ASCENDING)], name="by_claimer", sparse=True),
        RETENTION_INDEX,
    ],
}
LISTED = {**outbox_fields_excluded(), "lease_owner": 0, "lease_instance": 0, "lease_until": 0}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (what BSON keeps of a datetime), exactly."""
    return (moment - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    """The UTC time of `epoch_ms`, exactly."""
    return _EPOCH + ms * _MS


def _document(delivery: Delivery, due_at: float) -> Document:
    return {
        "_id": delivery.id,
        "tenant_id": delivery.tenant_id,
        "note_id": delivery.note_id,
        "call_id": delivery.call_id,
        "channel": str(delivery.channel),
        "recipient": delivery.recipient,
        "contact_person": delivery.contact_person,
        "purpose": str(delivery.purpose),
        "legal_basis": str(delivery.legal_basis),
        "status": str(delivery.status),
        "reason": delivery.reason,
        "attempts": 0,
        "attempt_limit": delivery.attempt_limit,
        "last_error": None,
        "provider": None,
        "provider_message_id": None,
        "message_id": delivery.message_id,
        "created_at": delivery.created_at,
        "created_ms": epoch_ms(delivery.created_at),  # the page key (see module docstring)
        "updated_at": delivery.created_at,
        "sent_at": None,
        "due_at": due_at,
        "lease_until": 0.0,
        "lease_owner": None,
        "category": str(delivery.category),
        "retention_from": delivery.retention_from,
    }


def _released(**fields: Any) -> Document:
    return {"$set": {**fields, "lease_until": 0.0, "lease_owner": None}}


class Ledger:
    """Reads and writes the `deliveries` collection; every tenant read is scoped and guarded."""

    def __init__(self, db: MongoDatabase) -> None:
        self._deliveries = db[DELIVERIES]

    async def insert_planned(self, deliveries: Sequence[Delivery], due_at: float) -> int:
        """Write planned deliveries in one round trip; those that exist already stay as they are.

        A redelivered note plans the same ids, so the second write changes nothing.
        """
        if not deliveries:
            return 0
        docs = [with_outbox(_document(d, due_at), []) for d in deliveries]
        try:
            result = await self._deliveries.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            return int(exc.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def claim_due(
        self, now: float, limit: int, *, owner: str, instance: str, lease_s: float
    ) -> list[Document]:
        """Claim up to `limit` due, unclaimed pending deliveries for `owner`; return them."""
        due = all_of({"status": PENDING}, {"due_at": {"$lte": now}}, {"lease_until": {"$lte": now}})
        cursor = self._deliveries.find(due, {"_id": 1}).sort("due_at", ASCENDING).limit(limit)
        ids = [doc["_id"] async for doc in cursor]
        if not ids:
            return []
        claim = {
            "$set": {
                "lease_until": now + lease_s,
                "lease_owner": owner,
                "lease_instance": instance,
            },
            "$inc": {"attempts": 1},
        }
        await self._deliveries.bulk_write(
            [
                UpdateOne({"_id": i, "status": PENDING, "lease_until": {"$lte": now}}, claim)
                for i in ids
            ],
            ordered=False,
        )
        mine = self._deliveries.find(
            {"_id": {"$in": ids}, "lease_owner": owner}, outbox_fields_excluded()
        )
        return [doc async for doc in mine]

    async def release_instance(self, instance: str) -> int:
        """Make the claims of an earlier life of this replica (killed mid-send) due at once."""
        return await update_matching(
            self._deliveries,
            {"lease_instance": instance, "status": PENDING},
            {"$set": {"lease_until": 0.0}},
        )

    async def mark(
        self,
        delivery_id: str,
        owner: str,
        fields: Document,
        events: Sequence[Event[Any]],
        *,
        only_if_pending: bool,
    ) -> bool:
        """Record an outcome and its events, if `owner` still holds the claim.

        A success is recorded whatever happened meanwhile (it is what happened); a failure
        only while the delivery is still pending (not cancelled or suppressed meanwhile).
        """
        query: Document = {"_id": delivery_id, "lease_owner": owner}
        if only_if_pending:
            query["status"] = PENDING
        update = _released(**fields)
        if events:
            update = merge_updates(update, outbox_update(events))
        result = await self._deliveries.update_one(query, update)
        return result.matched_count == 1

    async def close(
        self, delivery_id: str, owner: str, status: DeliveryStatus, reason: str, now: datetime
    ) -> bool:
        """Suppress or cancel a claimed delivery that was not attempted."""
        update = _released(status=str(status), reason=reason, updated_at=now)
        update["$inc"] = {"attempts": -1}  # the claim counted an attempt that did not happen
        result = await self._deliveries.update_one(
            {"_id": delivery_id, "lease_owner": owner, "status": PENDING}, update
        )
        return result.matched_count == 1

    async def close_matching(
        self,
        tenant_id: str,
        clauses: Sequence[Document],
        status: DeliveryStatus,
        reason: str,
        now: datetime,
    ) -> int:
        """Suppress or cancel every pending delivery of the tenant matching `clauses`."""
        return await update_matching(
            self._deliveries,
            tenant_query(tenant_id, *clauses, {"status": PENDING}),
            {"$set": {"status": str(status), "reason": reason, "updated_at": now}},
        )

    async def cancel_for_note(self, tenant_id: str, note_id: str, now: datetime) -> int:
        """Cancel the undelivered deliveries of a deleted note."""
        return await self.close_matching(
            tenant_id, [{"note_id": note_id}], DeliveryStatus.CANCELLED, "note deleted", now
        )

    async def suppress_for_subject(
        self,
        tenant_id: str,
        recipient: str,
        channel: Channel,
        purpose: ConsentPurpose,
        now: datetime,
    ) -> int:
        """Suppress what is not yet sent to a subject who withdrew consent (R-CON-2)."""
        clauses = [{"recipient": recipient}, {"channel": str(channel)}, {"purpose": str(purpose)}]
        reason = f"consent for {purpose} by {channel} withdrawn"
        return await self.close_matching(tenant_id, clauses, DeliveryStatus.SUPPRESSED, reason, now)

    async def page(
        self,
        tenant_id: str,
        *,
        note_id: str | None,
        status: DeliveryStatus | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Document]:
        """Up to `limit` deliveries of the tenant, newest first, after the cursor position."""
        clauses: list[Document] = []
        if note_id is not None:
            clauses.append({"note_id": note_id})
        if status is not None:
            clauses.append({"status": str(status)})
        if after is not None:
            created, ident = epoch_ms(after[0]), after[1]
            clauses.append(
                {
                    "$or": [
                        {"created_ms": {"$lt": created}},
                        {"$and": [{"created_ms": created}, {"_id": {"$lt": ident}}]},
                    ]
                }
            )
        cursor = (
            self._deliveries.find(tenant_query(tenant_id, *clauses), LISTED)
            .sort([("created_ms", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        docs = [doc async for doc in cursor]
        return only_tenant(docs, tenant_id, service=SERVICE, collection=DELIVERIES)

    async def reopen(
        self, delivery_id: str, *, extra_attempts: int, now: datetime, due_at: float
    ) -> Document | None:
        """Make a failed delivery pending and due again, with a fresh attempt budget."""
        failed = await self._deliveries.find_one(
            {"_id": delivery_id, "status": str(DeliveryStatus.FAILED)}, {"attempts": 1}
        )
        if failed is None:
            return None
        return await self._deliveries.find_one_and_update(
            {"_id": delivery_id, "status": str(DeliveryStatus.FAILED)},
            _released(
                status=PENDING,
                attempt_limit=int(failed.get("attempts", 0)) + extra_attempts,
                due_at=due_at,
                reason=None,
                updated_at=now,
            ),
            projection=LISTED,
            return_document=ReturnDocument.AFTER,
        )

    async def get(self, delivery_id: str) -> Document | None:
        """One delivery, whatever its tenant (operators only)."""
        return await self._deliveries.find_one({"_id": delivery_id}, LISTED)

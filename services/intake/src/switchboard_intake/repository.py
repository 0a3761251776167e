"""The tenants and calls collections: their indexes, documents and queries (PyMongo async)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_platform.errors import Conflict
from switchboard_platform.mongo import Document, MongoDatabase, as_utc
from switchboard_platform.outbox import (
    merge_updates,
    outbox_fields_excluded,
    outbox_update,
    with_outbox,
)
from switchboard_platform.tenancy import scoped

from . import calls, tenants
from .calls import Call, RetryKey, StoredCall
from .tenants import Tenant, TenantProfile

TENANTS = "tenants"
CALLS = "calls"
NUMBERS = "forwarding_numbers"

# Retention sweeps ask "category X, clock started before the cutoff" (DESIGN.md, Storage);
# erasure of a tenant or a caller asks by tenant first.
_RETENTION = IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention")
INDEXES: dict[str, list[IndexModel]] = {
    TENANTS: [
        # One owner per forwarding number, across documents (a multikey unique index). The
        # field is left out when empty: MongoDB would index [] as one shared key.
        IndexModel(
            [(NUMBERS, ASCENDING)], name="forwarding_number_owner", unique=True, sparse=True
        ),
        _RETENTION,
    ],
    CALLS: [
        _RETENTION,
        IndexModel([("tenant_id", ASCENDING), ("started_at", DESCENDING)], name="tenant_calls"),
        IndexModel([("tenant_id", ASCENDING), ("caller.phone", ASCENDING)], name="tenant_caller"),
        # an agent's retry of the same capture (Idempotency-Key) maps to the first call
        IndexModel([("idempotency_key", ASCENDING)], unique=True, sparse=True, name="retry_key"),
    ],
}


class NumberTaken(Conflict):
    """A forwarding number already belongs to another tenant."""

    def __init__(self, numbers: Sequence[str]) -> None:
        shown = ", ".join(numbers) or "a forwarding number"
        super().__init__(f"{shown} already belongs to another tenant", field=NUMBERS)
        self.numbers = tuple(numbers)


class IntakeRepository:
    """Reads and single-document writes of the intake database."""

    def __init__(self, db: MongoDatabase) -> None:
        self._tenants = db[TENANTS]
        self._calls = db[CALLS]

    async def insert_tenant(self, tenant: Tenant, events: Sequence[Event[Any]]) -> None:
        """Store a new tenant with its events; NumberTaken if another owns one of its numbers."""
        try:
            await self._tenants.insert_one(with_outbox(_tenant_document(tenant), events))
        except DuplicateKeyError as exc:
            raise await self._number_taken(exc, tenant) from exc

    async def update_tenant(
        self, tenant: Tenant, expected_version: int, events: Sequence[Event[Any]]
    ) -> bool:
        """Replace the profile if nobody changed it since `expected_version`; False if they did."""
        fields = _tenant_document(tenant)
        for fixed in ("_id", "created_at", "version"):
            del fields[fixed]
        update = merge_updates(
            {"$set": fields, "$inc": {"version": 1}},
            {"$unset": {NUMBERS: ""}} if NUMBERS not in fields else {},
            outbox_update(events),
        )
        try:
            result = await self._tenants.update_one(
                {"_id": tenant.tenant_id, "version": expected_version}, update
            )
        except DuplicateKeyError as exc:
            raise await self._number_taken(exc, tenant) from exc
        return result.matched_count == 1

    async def find_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant with this id, if any."""
        doc = await self._tenants.find_one({"_id": tenant_id}, outbox_fields_excluded())
        # exactly this id: nx-27017 matches a 24-hex-digit `_id` ignoring case, MongoDB not
        return None if doc is None or doc["_id"] != tenant_id else _tenant(doc)

    async def tenant_owning(self, number: str) -> Tenant | None:
        """The tenant a forwarding number belongs to (R-CALL-2), if any."""
        # `$in` rather than equality: it matches array elements on MongoDB and nx-27017 alike.
        doc = await self._tenants.find_one({NUMBERS: {"$in": [number]}}, outbox_fields_excluded())
        return None if doc is None else _tenant(doc)

    async def numbers_owned_elsewhere(self, numbers: Iterable[str], tenant_id: str) -> list[str]:
        """Those of `numbers` that tenants other than `tenant_id` own."""
        wanted = list(numbers)
        if not wanted:
            return []
        cursor = self._tenants.find(
            {NUMBERS: {"$in": wanted}, "_id": {"$ne": tenant_id}}, {NUMBERS: 1}
        )
        owned = {n async for doc in cursor for n in doc.get(NUMBERS, [])}
        return [n for n in wanted if n in owned]

    async def insert_call(
        self, call: Call, events: Sequence[Event[Any]], retry: RetryKey | None = None
    ) -> StoredCall | None:
        """Store a captured call with its events; None if the retry key is taken meanwhile."""
        document = _call_document(call)
        if retry is not None:
            document |= {
                "idempotency_key": retry.key,
                "idempotency_fingerprint": retry.fingerprint,
                "idempotency_expires_at": retry.expires_at,
            }
        try:
            await self._calls.insert_one(with_outbox(document, events))
        except DuplicateKeyError:
            if retry is None:
                raise
            return None
        return StoredCall(call, retry.fingerprint if retry else None, None)

    async def call_by_retry_key(self, key: str) -> StoredCall | None:
        """The call stored earlier under this retry key, with its fingerprint and expiry."""
        doc = await self._calls.find_one({"idempotency_key": key}, outbox_fields_excluded())
        if doc is None:
            return None
        expires = doc.get("idempotency_expires_at")
        return StoredCall(
            Call.model_validate({**doc, "call_id": doc["_id"]}) if "caller" in doc else None,
            doc.get("idempotency_fingerprint"),
            as_utc(expires) if expires is not None else None,
        )

    async def drop_recording(self, tenant_id: str, call_id: str) -> None:
        """Remove the reference to the call's recording (R-REC-1)."""
        await self._calls.update_one(
            scoped(tenant_id, {"_id": call_id}), {"$unset": {"recording.url": ""}}
        )

    async def forget_call(self, tenant_id: str, call_id: str, at: datetime) -> bool:
        """Drop what the call record holds of the caller (its note was deleted); False if
        there is no such call of this tenant, or it was forgotten before."""
        result = await self._calls.update_one(
            scoped(tenant_id, {"_id": call_id}, {"caller": {"$exists": True}}),
            calls.FORGOTTEN.update(at),
        )
        return result.modified_count > 0

    async def release_retry_key(self, key: str) -> None:
        """Free an expired retry key for reuse (the call keeps everything else)."""
        await self._calls.update_one(
            {"idempotency_key": key},
            {
                "$unset": {
                    "idempotency_key": "",
                    "idempotency_fingerprint": "",
                    "idempotency_expires_at": "",
                }
            },
        )

    async def _number_taken(self, exc: DuplicateKeyError, tenant: Tenant) -> NumberTaken:
        key = (exc.details or {}).get("keyValue") or {}
        if isinstance(key.get(NUMBERS), str):
            return NumberTaken([key[NUMBERS]])
        numbers = tenant.profile.forwarding_numbers
        return NumberTaken(await self.numbers_owned_elsewhere(numbers, tenant.tenant_id))


def _tenant_document(tenant: Tenant) -> Document:
    profile = tenant.profile
    empty = {NUMBERS} if not profile.forwarding_numbers else None
    fields = profile.model_dump(mode="json", exclude=empty)
    return {
        "_id": tenant.tenant_id,
        "tenant_id": tenant.tenant_id,
        "category": str(tenants.category(profile)),
        "retention_from": tenants.retention_from(profile, tenant.created_at),
        "created_at": tenant.created_at,
        "updated_at": tenant.updated_at,
        "version": tenant.version,
        **fields,
    }


def _tenant(doc: Document) -> Tenant:
    return Tenant(
        tenant_id=doc["_id"],
        profile=TenantProfile.model_validate(doc),
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
        version=doc["version"],
    )


def _call_document(call: Call) -> Document:
    fields = call.model_dump(exclude={"call_id"})
    return {
        "_id": call.call_id,
        "category": str(calls.CATEGORY),
        "retention_from": call.started_at,
        **fields,
    }

"""The tenants and calls collections: their indexes, documents and queries (motor)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_platform.errors import Conflict
from switchboard_platform.mongo import Document, MongoDatabase
from switchboard_platform.outbox import outbox_fields_excluded, outbox_update, with_outbox

from . import calls, tenants
from .calls import Call
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
        update = outbox_update(events)
        update["$set"] = fields
        update["$inc"] = {**update["$inc"], "version": 1}
        if NUMBERS not in fields:
            update["$unset"] = {NUMBERS: ""}
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
        return None if doc is None else _tenant(doc)

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
        self, call: Call, events: Sequence[Event[Any]], idempotency_key: str | None = None
    ) -> Call:
        """Store a captured call with its events; with a retry key seen before, the first call."""
        document = _call_document(call)
        if idempotency_key is not None:
            document["idempotency_key"] = idempotency_key
        try:
            await self._calls.insert_one(with_outbox(document, events))
        except DuplicateKeyError:
            first = await self.call_by_retry_key(idempotency_key) if idempotency_key else None
            if first is None:
                raise
            return first
        return call

    async def call_by_retry_key(self, idempotency_key: str) -> Call | None:
        """The call stored earlier under this retry key, if any."""
        doc = await self._calls.find_one(
            {"idempotency_key": idempotency_key}, outbox_fields_excluded()
        )
        return None if doc is None else Call.model_validate({**doc, "call_id": doc["_id"]})

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
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
        version=doc["version"],
    )


def _utc(value: datetime | str) -> datetime:
    # nx-27017 (the embedded dev server) stores a top-level `$set` datetime as a naive
    # ISO string; MongoDB keeps it a date. Both mean UTC.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _call_document(call: Call) -> Document:
    fields = call.model_dump(exclude={"call_id"})
    return {
        "_id": call.call_id,
        "category": str(calls.CATEGORY),
        "retention_from": call.started_at,
        **fields,
    }

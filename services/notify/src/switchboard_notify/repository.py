"""What notify keeps of other services' data: tenants' recipients and copies of notes.

Both are learnt from events only (DESIGN.md: no service reads another's collections). A
tenant document is replaced by each `tenant.changed` (the event carries the whole profile);
a note copy lives until `note.deleted` turns it into a tombstone without personal data, so
a redelivered `note.created` cannot bring it back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import Caller
from switchboard_contracts.tenants import Channel, ContractStatus
from switchboard_platform.flows import current_trace_id
from switchboard_platform.mongo import Document, MongoDatabase, as_utc
from switchboard_platform.tenancy import TENANT_FIELD, one_of_tenant, only_tenant, scoped

from .domain import NoteCopy, Recipient, TenantProfile

SERVICE = "notify"
_CACHE_LIMIT = 10_000
TENANTS = "tenants"
NOTES = "notes"
LIVE = {"$exists": False}
NOTE_CONTENT = ("caller", "caller_phone", "concern")
"""What a note copy holds of the caller; gone for secrecy-bound tenants and deleted notes."""

RETENTION_INDEX = IndexModel(
    [("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"
)
INDEXES: dict[str, Sequence[IndexModel]] = {
    TENANTS: [RETENTION_INDEX, IndexModel([("subjects", ASCENDING)], name="recipient_subjects")],
    NOTES: [
        RETENTION_INDEX,
        IndexModel([("tenant_id", ASCENDING), ("planned", ASCENDING)], name="tenant_unplanned"),
        IndexModel([("caller_phone", ASCENDING)], name="caller_phone", sparse=True),
    ],
}


def tenant_query(tenant_id: str, *clauses: Document) -> Document:
    """The filter `scoped(tenant_id, *clauses)` builds, flat whenever that means the same.

    nx-27017 plans no index for a top-level `$and`: every `scoped()` read is a collection
    scan there (about 30 ms at 1,500 deliveries, against 1 ms for the same filter written
    flat). Clauses on distinct plain fields are therefore merged into one document, which
    is the same filter on MongoDB; a clause with a top-level operator (`$or`, …) or a field
    named twice keeps `scoped()`'s explicit `$and`, which nx-27017's `$or` quirk needs.
    """
    flat: Document = {TENANT_FIELD: tenant_id}
    for clause in clauses:
        if any(key.startswith("$") or key in flat for key in clause):
            return scoped(tenant_id, *clauses)
        flat.update(clause)
    return flat


def _tenant_document(profile: TenantProfile) -> Document:
    return {
        "_id": profile.tenant_id,
        "tenant_id": profile.tenant_id,
        "secrecy_bound": profile.secrecy_bound,
        "contract_status": str(profile.contract_status),
        "terminated_on": profile.terminated_on.isoformat() if profile.terminated_on else None,
        "recipients": [
            {
                "channel": str(r.channel),
                "address": r.address,
                "contact_person": r.contact_person,
                "valid": r.valid,
            }
            for r in profile.recipients
        ],
        "subjects": [r.address for r in profile.recipients],  # for data-subject requests
        "changed_at": profile.changed_at,
        "category": str(profile.category),
        "retention_from": profile.retention_from,
    }


def _tenant(doc: Document) -> TenantProfile:
    terminated = doc.get("terminated_on")
    return TenantProfile(
        tenant_id=doc["tenant_id"],
        secrecy_bound=bool(doc["secrecy_bound"]),
        contract_status=ContractStatus(doc["contract_status"]),
        recipients=tuple(
            Recipient(Channel(r["channel"]), r["address"], r.get("contact_person"), r["valid"])
            for r in doc.get("recipients") or []
        ),
        changed_at=as_utc(doc["changed_at"]),
        terminated_on=date.fromisoformat(terminated) if terminated else None,
    )


class TenantsRepository:
    """The latest profile of each tenant, as `tenant.changed` last described it.

    A profile read is kept for `max_age_s` (NOTIFY_TENANT_CACHE_S): every note and every
    send needs it, and `tenant.changed` and `note.created` are not ordered against each
    other anyway, so a profile up to that old is one the events could have arrived with.
    Consent is never cached. An unknown tenant is always read again.
    """

    def __init__(self, db: MongoDatabase, *, max_age_s: float = 0.0) -> None:
        self._tenants = db[TENANTS]
        self._max_age_s = max_age_s
        self._cache: dict[str, tuple[float, TenantProfile]] = {}

    async def save(self, profile: TenantProfile) -> None:
        """Store the profile in place of the previous one (replaced whole: no `$set` dates)."""
        self._cache.pop(profile.tenant_id, None)
        await self._tenants.replace_one(
            {"_id": profile.tenant_id}, _tenant_document(profile), upsert=True
        )
        self._cache.pop(profile.tenant_id, None)

    async def known(self, tenant_id: str) -> bool:
        """Whether a `tenant.changed` of the tenant was stored (always read, never cached).

        Until the tenant's data is erased at its offboarding, a terminated tenant stays.
        """
        doc = await self._tenants.find_one({"_id": tenant_id}, {"_id": 1})
        return doc is not None

    async def get(self, tenant_id: str, *, fresh: bool = False) -> TenantProfile | None:
        """The tenant's profile, or None before its first `tenant.changed`; `fresh`: as
        stored now, never a cached read."""
        cached = None if fresh else self._cache.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < self._max_age_s:
            return cached[1]
        read_at = time.monotonic()
        doc = await self._tenants.find_one(tenant_query(tenant_id, {"_id": tenant_id}))
        doc = one_of_tenant(doc, tenant_id, service=SERVICE, collection=TENANTS)
        if doc is None:
            return None
        profile = _tenant(doc)
        if self._max_age_s > 0:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[tenant_id] = (read_at, profile)
        return profile


def _note_document(note: NoteCopy, now: datetime, planned: bool) -> Document:
    doc: Document = {
        "_id": note.note_id,
        "tenant_id": note.tenant_id,
        "call_id": note.call_id,
        "contact_person": note.contact_person,
        "started_at": note.started_at,
        "duration_seconds": note.duration_seconds,
        "planned": planned,
        "stored_at": now,
        "category": str(note.category),
        "retention_from": note.retention_from,
        "note_created_at": note.created_at,
        "trace_id": current_trace_id(),
    }
    if note.caller is not None:
        doc |= {"caller": note.caller.model_dump(mode="json"), "caller_phone": note.caller.phone}
    if note.concern is not None:
        doc["concern"] = note.concern
    return doc


def _note(doc: Document) -> NoteCopy:
    caller: Any = doc.get("caller")
    return NoteCopy(
        note_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        call_id=doc["call_id"],
        caller=Caller.model_validate(caller) if caller else None,
        concern=doc.get("concern"),
        contact_person=doc.get("contact_person"),
        started_at=as_utc(doc["started_at"]),
        duration_seconds=doc.get("duration_seconds"),
        created_at=as_utc(doc["note_created_at"]) if doc.get("note_created_at") else None,
        trace_id=doc.get("trace_id"),
    )


class NotesRepository:
    """Copies of the notes to deliver, and tombstones of deleted ones."""

    def __init__(self, db: MongoDatabase) -> None:
        self._notes = db[NOTES]

    async def insert_new(self, note: NoteCopy, now: datetime, *, planned: bool) -> bool:
        """Store a copy; False if the note is known already (or was deleted).

        `planned`: its deliveries are written next (False: its tenant is not known yet).
        """
        try:
            await self._notes.insert_one(_note_document(note, now, planned))
        except DuplicateKeyError:
            return False
        return True

    async def state(self, tenant_id: str, note_id: str) -> Document | None:
        """`planned` and `deleted_at` of the tenant's note, or None if unknown."""
        doc = await self._notes.find_one(
            tenant_query(tenant_id, {"_id": note_id}),
            {"tenant_id": 1, "planned": 1, "deleted_at": 1},
        )
        return one_of_tenant(doc, tenant_id, service=SERVICE, collection=NOTES)

    async def get_live(self, tenant_id: str, note_id: str) -> NoteCopy | None:
        """The tenant's note if it is not deleted, else None."""
        doc = await self._notes.find_one(
            tenant_query(tenant_id, {"_id": note_id}, {"deleted_at": LIVE})
        )
        doc = one_of_tenant(doc, tenant_id, service=SERVICE, collection=NOTES)
        return None if doc is None else _note(doc)

    async def live_many(self, tenant_id: str, note_ids: Sequence[str]) -> dict[str, NoteCopy]:
        """The tenant's live notes among `note_ids`, by id (deleted and unknown ones absent)."""
        cursor = self._notes.find(
            tenant_query(tenant_id, {"_id": {"$in": list(note_ids)}}, {"deleted_at": LIVE})
        )
        docs = only_tenant([d async for d in cursor], tenant_id, service=SERVICE, collection=NOTES)
        return {d["_id"]: _note(d) for d in docs}

    async def unplanned(self, tenant_id: str) -> list[NoteCopy]:
        """Live notes of the tenant that arrived before the tenant was known."""
        cursor = self._notes.find(tenant_query(tenant_id, {"planned": False}, {"deleted_at": LIVE}))
        docs = only_tenant([d async for d in cursor], tenant_id, service=SERVICE, collection=NOTES)
        return [_note(d) for d in docs]

    async def mark_planned(self, note: NoteCopy, *, forget_content: bool) -> None:
        """Its deliveries exist; a secrecy-bound tenant's copy loses caller and concern."""
        update: Document = {"$set": {"planned": True}}
        if forget_content:
            update["$unset"] = dict.fromkeys(NOTE_CONTENT, "")
        await self._notes.update_one(tenant_query(note.tenant_id, {"_id": note.note_id}), update)

    async def tombstone(self, tenant_id: str, note_id: str, deleted_at: datetime) -> None:
        """Forget the note's content; a tombstone keeps a later `note.created` out."""
        try:
            await self._notes.insert_one(
                {
                    "_id": note_id,
                    "tenant_id": tenant_id,
                    "planned": True,
                    "deleted_at": deleted_at,
                    "category": str(DataCategory.CALL_DATA),
                    "retention_from": deleted_at,
                }
            )
            return
        except DuplicateKeyError:
            pass
        await self._notes.update_one(
            tenant_query(tenant_id, {"_id": note_id}, {"deleted_at": LIVE}),
            {
                "$set": {"deleted_at": deleted_at, "planned": True},
                "$unset": {**dict.fromkeys(NOTE_CONTENT, ""), "contact_person": ""},
            },
        )

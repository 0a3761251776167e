"""The mapping note → CRM record, per connector, and the caller → CRM contact memory.

A mapping is written step by step while a note is synced: the contact id once known, a
`create_started` mark just before the call record is created, the record id as soon as
the CRM answers. A redelivered `note.created` or a transfer taken up again after a crash
finds the record id and creates nothing; one that finds only the mark first asks the CRM
whether the record exists (docs/decisions/0012). Contacts are remembered because CRM
searches are eventually consistent (HubSpot): two calls from one caller in a row must
not create two contacts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts.categories import DataCategory
from switchboard_platform.mongo import Document, MongoDatabase

from .connectors import RecordRef

RECORDS = "records"
CONTACTS = "contacts"
CALL_DATA = str(DataCategory.CALL_DATA)

INDEXES: dict[str, Sequence[IndexModel]] = {
    RECORDS: [
        IndexModel([("tenant_id", ASCENDING), ("note_id", ASCENDING)], name="tenant_note"),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    ],
    CONTACTS: [
        IndexModel([("tenant_id", ASCENDING), ("caller_phone", ASCENDING)], name="tenant_phone"),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    ],
}


def _record_id(cid: str, note_id: str) -> str:
    return f"{cid}:{note_id}"


def _contact_id(cid: str, phone: str) -> str:
    return f"{cid}:{hashlib.sha256(phone.encode()).hexdigest()[:32]}"


class RecordStore:
    """What crm-sync created in each CRM, so nothing is created twice."""

    def __init__(self, db: MongoDatabase) -> None:
        self._records = db[RECORDS]
        self._contacts = db[CONTACTS]

    async def get(self, cid: str, note_id: str) -> Document | None:
        """The mapping of `note_id` on connector `cid`, if any."""
        return await self._records.find_one({"_id": _record_id(cid, note_id)})

    async def ensure(
        self,
        cid: str,
        *,
        tenant_id: str,
        kind: str,
        note_id: str,
        call_id: str,
        retention_from: datetime,
        now: datetime,
        caller_phone: str | None = None,
    ) -> Document:
        """The mapping of `note_id`, created empty (with its retention fields) if missing.

        `caller_phone` finds the mapping for the caller's data-subject requests (R-DSR-17).
        """
        doc = {
            "_id": _record_id(cid, note_id),
            "tenant_id": tenant_id,
            "connector_id": cid,
            "kind": kind,
            "note_id": note_id,
            "call_id": call_id,
            "caller_phone": caller_phone,
            "created_at": now,
            "category": CALL_DATA,
            "retention_from": retention_from,
        }
        try:
            await self._records.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(cid, note_id)
            assert existing is not None
            return existing
        return doc

    async def set_fields(self, cid: str, note_id: str, fields: Document) -> None:
        """Record a step of the sync (contact id, create mark, record id, deletion)."""
        await self._records.update_one({"_id": _record_id(cid, note_id)}, {"$set": fields})

    async def set_record(self, cid: str, note_id: str, ref: RecordRef) -> None:
        """The CRM answered: this is the note's record."""
        await self.set_fields(
            cid, note_id, {"record_type": ref.record_type, "record_id": ref.record_id}
        )

    async def contact_of(self, cid: str, phone: str) -> str | None:
        """The CRM contact crm-sync found or made for this caller before, if any."""
        doc = await self._contacts.find_one({"_id": _contact_id(cid, phone)})
        return str(doc["contact_id"]) if doc else None

    async def remember_contact(
        self,
        cid: str,
        *,
        tenant_id: str,
        phone: str,
        contact_id: str,
        note_id: str,
        retention_from: datetime,
    ) -> None:
        """Keep the caller's CRM contact id (the caller's phone stays findable for DSRs)."""
        doc = {
            "_id": _contact_id(cid, phone),
            "tenant_id": tenant_id,
            "connector_id": cid,
            "caller_phone": phone,
            "contact_id": contact_id,
            "note_id": note_id,
            "category": CALL_DATA,
            "retention_from": retention_from,
        }
        try:
            await self._contacts.insert_one(doc)
        except DuplicateKeyError:
            await self._contacts.update_one(
                {"_id": doc["_id"]}, {"$set": {"contact_id": contact_id}}
            )

"""Notes deleted before crm-sync saw them created: a late `note.created` sends nothing.

`note.created` and `note.deleted` travel on two topics, each read by its own consumer, so a
deletion can arrive first (the creations' consumer lagging, retrying or rejoining its
group). Without a memory of it, the late creation would send a deleted note to the client's
CRM (R-NOTE-2). A tombstone holds ids, the deletion's time and reason, no caller data, and
expires with the call's data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts.categories import DataCategory
from switchboard_platform.mongo import MongoDatabase, as_utc

DELETED_NOTES = "deleted_notes"

INDEXES: dict[str, Sequence[IndexModel]] = {
    DELETED_NOTES: [
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention")
    ]
}


@dataclass(frozen=True, slots=True)
class Deletion:
    """What crm-sync needs of a `note.deleted` to withdraw the note from the CRMs."""

    tenant_id: str
    note_id: str
    call_id: str
    deleted_at: datetime
    reason: str


def _id(tenant_id: str, note_id: str) -> str:
    return f"{tenant_id}:{note_id}"


class DeletedNoteStore:
    """Tombstones of deleted notes, by tenant and note."""

    def __init__(self, db: MongoDatabase) -> None:
        self._coll = db[DELETED_NOTES]

    async def remember(self, deletion: Deletion) -> None:
        """Keep the tombstone (once: a redelivered deletion changes nothing)."""
        with contextlib.suppress(DuplicateKeyError):
            await self._coll.insert_one(
                {
                    "_id": _id(deletion.tenant_id, deletion.note_id),
                    "tenant_id": deletion.tenant_id,
                    "note_id": deletion.note_id,
                    "call_id": deletion.call_id,
                    "deleted_at": deletion.deleted_at,
                    "reason": deletion.reason,
                    "category": str(DataCategory.CALL_DATA),
                    "retention_from": deletion.deleted_at,
                }
            )

    async def find(self, tenant_id: str, note_id: str) -> Deletion | None:
        """The note's deletion, if it was deleted."""
        doc = await self._coll.find_one({"_id": _id(tenant_id, note_id)})
        if doc is None:
            return None
        return Deletion(
            tenant_id=doc["tenant_id"],
            note_id=doc["note_id"],
            call_id=doc["call_id"],
            deleted_at=as_utc(doc["deleted_at"]),
            reason=doc["reason"],
        )

"""A note into one CRM, and out again, never creating anything twice.

The mapping (record_store) is written at each step: the contact, a mark just before the
call record is created, the record id right after. A transfer that finds the record id
does nothing; one that finds only the mark asks the CRM first, where the CRM can say
(HubSpot calls by `hs_call_external_id`, Salesforce Tasks by their external id field).
A CRM that accepts the create but names no record we can keep has the note all the same:
the transfer is synced, never sent again (that would log the call twice), and marked
`record_unnamed`, so its deletion says it must be done in the CRM by hand.
Contact lookups of one caller on one connector run one at a time in this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard_platform.mongo import Document

from .connectors import Connector, CrmError, Deletion, RecordRef, UnnamedRecord
from .domain import Kind, NoteContent, Operation, TransferStatus, transfer_id
from .record_store import RecordStore
from .transfer_store import TransferStore

SYNC_IN_FLIGHT_WAIT_S = 1.0
UNNAMED = (
    "the CRM accepted the note but named no record: it cannot be deleted from here, only in the CRM"
)
KEPT_CONTACT = {
    Kind.HUBSPOT: "call deleted; the contact stays (the client's own CRM data)",
    Kind.SALESFORCE: "Task deleted; the Contact stays (the client's own CRM data)",
    Kind.PIPEDRIVE: "call log deleted; the person stays (the client's own CRM data)",
    Kind.WEBHOOK: "note.deleted sent; the receiver deletes its copy",
}


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a delete did: the CRM's status (None: nothing to delete, see detail) or a wait."""

    status_code: int | None
    detail: str
    wait: float = 0.0


class Synchroniser:
    """Creates and deletes a note's CRM records through a connector, idempotently."""

    def __init__(
        self,
        records: RecordStore,
        transfers: TransferStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._transfers = transfers
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def _one_at_a_time(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

    async def create(
        self, connector: Connector, doc: Document, note: NoteContent
    ) -> tuple[int, str]:
        """The note's record in the CRM, made now or found made; (status code, remark)."""
        cid = doc["connector_id"]
        now = datetime.fromtimestamp(self._clock(), UTC)
        rec = await self._records.ensure(
            cid,
            tenant_id=note.tenant_id,
            kind=str(connector.kind),
            note_id=note.note_id,
            call_id=note.call_id,
            retention_from=note.started_at,
            now=now,
            caller_phone=note.caller_phone,
        )
        if rec.get("record_id"):
            return int(rec.get("status_code") or 200), "already in the CRM (mapping kept)"
        if rec.get("record_unnamed"):
            return int(rec.get("status_code") or 200), UNNAMED
        contact_id = rec.get("contact_id")
        if contact_id is None:
            contact_id = await self._contact(connector, cid, note)
        remark = ""
        if rec.get("create_started") is not None and not connector.idempotent_create:
            if connector.can_find_recorded:
                found = await connector.find_recorded(note, note.note_id)
                if found is not None:
                    await self._save(cid, note.note_id, found, 200)
                    return 200, "found the record of an interrupted attempt"
            else:
                remark = (
                    "an earlier attempt was interrupted and this CRM cannot be searched "
                    "for its record: it may hold the call twice"
                )
        await self._records.set_fields(
            cid,
            note.note_id,
            {"contact_id": contact_id, "create_started": int(doc.get("attempts") or 1)},
        )
        try:
            ref = await connector.record_call_note(note, contact_id)
        except UnnamedRecord:
            status = connector.last_status or 201
            await self._records.set_fields(
                cid, note.note_id, {"record_unnamed": True, "status_code": status}
            )
            found = await self._look_up(connector, note)
            if found is None:
                return status, UNNAMED
            ref = found
        status = connector.last_status or 201
        await self._save(cid, note.note_id, ref, status)
        return status, remark

    async def _look_up(self, connector: Connector, note: NoteContent) -> RecordRef | None:
        """The record a CRM created without naming it, where the CRM can be searched and
        already finds it (a failed search changes nothing: the note is in the CRM)."""
        if not connector.can_find_recorded:
            return None
        try:
            return await connector.find_recorded(note, note.note_id)
        except CrmError:
            return None

    async def _save(self, cid: str, note_id: str, ref: RecordRef, status: int) -> None:
        await self._records.set_fields(
            cid,
            note_id,
            {"record_type": ref.record_type, "record_id": ref.record_id, "status_code": status},
        )

    async def _contact(self, connector: Connector, cid: str, note: NoteContent) -> str | None:
        if not connector.has_contacts:
            return None
        if not connector.remembers_contacts:
            return await connector.upsert_contact(note)
        async with self._one_at_a_time(f"{cid}:{note.caller_phone}"):
            known = await self._records.contact_of(cid, note.caller_phone)
            if known is not None:
                return known
            contact_id = await connector.upsert_contact(note)
            if contact_id is not None:
                await self._records.remember_contact(
                    cid,
                    tenant_id=note.tenant_id,
                    phone=note.caller_phone,
                    contact_id=contact_id,
                    note_id=note.note_id,
                    retention_from=note.started_at,
                )
            return contact_id

    async def delete(self, connector: Connector, doc: Document) -> DeleteResult:
        """Delete the note's record where the CRM has one; else say why not (R-NOTE-2)."""
        cid, note_id = doc["connector_id"], doc["note_id"]
        sync = await self._transfers.by_id(
            transfer_id(doc["tenant_id"], note_id, connector.kind, Operation.SYNC)
        )
        if (
            sync is not None
            and sync.get("status") == TransferStatus.SENDING
            and float(sync.get("due_at") or 0) > self._clock()
        ):
            return DeleteResult(None, "", wait=SYNC_IN_FLIGHT_WAIT_S)
        rec = await self._records.get(cid, note_id)
        if rec is not None and rec.get("deleted_at") is not None:
            return DeleteResult(int(rec.get("delete_status") or 200), "deleted before")
        ref = None
        if rec is not None and rec.get("record_id"):
            ref = RecordRef(str(rec["record_type"]), str(rec["record_id"]))
        interrupted = rec is not None and rec.get("create_started") is not None
        if ref is None and interrupted and connector.can_find_recorded:
            ref = await connector.find_recorded(None, note_id)
        if ref is None:
            if rec is not None and rec.get("record_unnamed"):
                return DeleteResult(None, UNNAMED)
            if interrupted and not connector.can_find_recorded:
                return DeleteResult(
                    None, "an interrupted attempt may have created a record this CRM cannot find"
                )
            return DeleteResult(None, "nothing to delete: the note never reached this CRM")
        status = await connector.delete(ref, Deletion(**doc["deletion"]))
        now = datetime.fromtimestamp(self._clock(), UTC)
        await self._records.set_fields(cid, note_id, {"deleted_at": now, "delete_status": status})
        return DeleteResult(status, KEPT_CONTACT[connector.kind])

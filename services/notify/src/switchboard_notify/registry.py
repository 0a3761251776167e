"""The consent registry's collection: append-only records, read per subject (R-CON-3).

Records are only ever inserted (a withdrawal is a record of its own), each with its
`consent.changed` event in the same write. Their id is the event's `consent_id`, so a
record that comes back over Kafka — ours, or another service's redelivered — is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_platform.mongo import Document, MongoDatabase, as_utc
from switchboard_platform.outbox import outbox_fields_excluded, with_outbox
from switchboard_platform.tenancy import only_tenant

from .consents import ConsentRecord, current_status
from .repository import RETENTION_INDEX, SERVICE, tenant_query

CONSENTS = "consents"
INDEXES: dict[str, Sequence[IndexModel]] = {
    CONSENTS: [
        IndexModel(
            [("tenant_id", ASCENDING), ("subject", ASCENDING), ("occurred_at", ASCENDING)],
            name="subject_history",
        ),
        IndexModel([("subject", ASCENDING)], name="by_subject"),
        RETENTION_INDEX,
    ],
}


def _document(record: ConsentRecord) -> Document:
    return {
        "_id": record.consent_id,
        "tenant_id": record.tenant_id,
        "subject": record.subject.value,  # the data subject, in a plain field
        "subject_kind": str(record.subject.kind),
        "purpose": str(record.purpose),
        "channel": str(record.channel),
        "status": str(record.status),
        "occurred_at": record.occurred_at,
        "method": str(record.method),
        "text_version": record.text_version,
        "recorded_by": record.recorded_by,
        "recorded_at": record.recorded_at,
        "call_id": record.call_id,
        "category": str(record.category),
        "retention_from": record.retention_from,
    }


def _record(doc: Document) -> ConsentRecord:
    return ConsentRecord(
        consent_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        subject=SubjectId(kind=SubjectKind(doc["subject_kind"]), value=doc["subject"]),
        purpose=ConsentPurpose(doc["purpose"]),
        channel=ConsentChannel(doc["channel"]),
        status=ConsentStatus(doc["status"]),
        occurred_at=as_utc(doc["occurred_at"]),
        method=ConsentMethod(doc["method"]),
        text_version=doc["text_version"],
        recorded_by=doc["recorded_by"],
        recorded_at=as_utc(doc["recorded_at"]),
        call_id=doc.get("call_id"),
    )


def _ordered(records: list[ConsentRecord]) -> list[ConsentRecord]:
    return sorted(records, key=lambda r: (r.occurred_at, r.recorded_at, r.consent_id))


class ConsentRegistry:
    """Stores consent records and answers "who consented to what" per tenant and subject."""

    def __init__(self, db: MongoDatabase) -> None:
        self._consents = db[CONSENTS]

    async def record(self, record: ConsentRecord, events: Sequence[Event[Any]]) -> bool:
        """Append a record with its events; False if a record with its id exists already."""
        try:
            await self._consents.insert_one(with_outbox(_document(record), events))
        except DuplicateKeyError:
            return False
        return True

    async def _find(self, tenant_id: str, *clauses: Document) -> list[ConsentRecord]:
        cursor = self._consents.find(tenant_query(tenant_id, *clauses), outbox_fields_excluded())
        docs = [d async for d in cursor]
        kept = only_tenant(docs, tenant_id, service=SERVICE, collection=CONSENTS)
        return _ordered([_record(d) for d in kept])

    async def history(self, tenant_id: str, subject: str) -> list[ConsentRecord]:
        """Every record of the subject in the tenant's context, oldest first (Art. 7(1))."""
        return await self._find(tenant_id, {"subject": subject})

    async def of_subjects(self, tenant_id: str, subjects: Sequence[str]) -> list[ConsentRecord]:
        """Every record of any of `subjects`, oldest first."""
        if not subjects:
            return []
        wanted = set(subjects)
        found = await self._find(tenant_id, {"subject": {"$in": list(wanted)}})
        return [r for r in found if r.subject.value in wanted]

    async def current(
        self,
        tenant_id: str,
        subject: str,
        purpose: ConsentPurpose,
        channel: ConsentChannel,
        now: datetime,
    ) -> ConsentStatus | None:
        """The subject's consent for `purpose` on `channel` as of `now`, or None if never given."""
        records = await self._find(
            tenant_id,
            {"subject": subject},
            {"purpose": str(purpose)},
            {"channel": str(channel)},
        )
        matching = [r for r in records if (r.purpose, r.channel) == (purpose, channel)]
        return current_status(matching, now)

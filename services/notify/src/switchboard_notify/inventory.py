"""What personal data notify keeps, for retention sweeps and data-subject requests (issue 11).

- **Note copies** hold the caller (phone, e-mail, name) until the call's clock runs out
  (R-RET-1); a secrecy-bound tenant's copy, and a deleted note's tombstone, hold no caller.
- **Deliveries** hold the recipient's address and contact person, and no caller data: a
  caller's erasure takes the note copy, the only thing that links a ledger entry to them;
  the entry itself (note id, recipient, time, outcome: the R-API-2 record of the transfer)
  goes with the call's 60 days.
- **Consents** are the registry's records, one subject each (recipients, callers).
- **Tenants** name the client's recipients: part of the client's account, which the client
  changes (kept on a subject's erasure, and said so); an access answer shows a subject
  only their own entry of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue

from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_platform.mongo import Document
from switchboard_platform.retention_participant import (
    Inventory,
    PersonalData,
    Tombstone,
    exported,
)
from switchboard_platform.subjects import subject_key

from .ledger import DELIVERIES
from .registry import CONSENTS
from .repository import NOTE_CONTENT, NOTES, TENANTS


def _own_recipient_entries(doc: Document, identifiers: Sequence[SubjectId]) -> dict[str, JsonValue]:
    """Of a tenant's recipients, only the subject's own entries (never other recipients)."""
    wanted = {subject_key(i) for i in identifiers}

    def mine(entry: dict[str, object]) -> bool:
        address, person = entry.get("address"), entry.get("contact_person")
        values = [
            (SubjectKind.EMAIL, address),
            (SubjectKind.PHONE, address),
            (SubjectKind.NAME, person),
        ]
        # unvalidated: an address is tried as a phone and as an e-mail, one of them fails
        return any(
            isinstance(v, str)
            and v
            and subject_key(SubjectId.model_construct(kind=k, value=v)) in wanted
            for k, v in values
        )

    whole = exported(doc, RECIPIENT_LISTS)
    return {
        "id": whole["id"],
        "tenant_id": whole.get("tenant_id"),
        "recipients": [e for e in doc.get("recipients") or [] if mine(e)],
    }


def _erased(now: datetime) -> Document:
    return {"deleted_at": now, "planned": True}


ERASED_COPY = Tombstone(removes=(*NOTE_CONTENT, "contact_person"), marks=_erased)
"""An erased caller's note copy becomes the tombstone `note.deleted` leaves: `note.created`
stays 30 days on Kafka, and a redelivery must neither store the copy again nor send it."""

NOTE_COPIES = PersonalData(
    collection=NOTES,
    purpose="Call note kept until it is delivered to the client by e-mail or SMS (Art. 28 GDPR)",
    recipients=("the client's recipients of call notes", "mail and SMS providers"),
    subject_fields={
        SubjectKind.PHONE: ("caller_phone",),
        SubjectKind.EMAIL: ("caller.email",),
        SubjectKind.NAME: ("caller.name",),
    },
    # the phone is held twice (caller.phone, and caller_phone for the index): not rectified
    # here, where one path is corrected per field; notes and intake correct it at the source
    rectifiable={"name": "caller.name", "email": "caller.email", "company": "caller.company"},
    private_fields=("planned", "trace_id"),
    tombstone=ERASED_COPY,
)
DELIVERY_LEDGER = PersonalData(
    collection=DELIVERIES,
    purpose="What was sent to whom, when, on which legal basis, with which result (R-API-2)",
    recipients=("mail and SMS providers",),
    subject_fields={
        SubjectKind.PHONE: ("recipient",),
        SubjectKind.EMAIL: ("recipient",),
        SubjectKind.NAME: ("contact_person",),
    },
    private_fields=("lease_owner", "lease_instance", "lease_until", "due_at", "created_ms"),
)
CONSENT_REGISTRY = PersonalData(
    collection=CONSENTS,
    purpose="Proof of consent and of its withdrawal (Art. 7(1) GDPR, R-CON-3)",
    recipients=(),
    subject_fields={
        SubjectKind.PHONE: ("subject",),
        SubjectKind.EMAIL: ("subject",),
        SubjectKind.NAME: ("subject",),
    },
)
RECIPIENT_LISTS = PersonalData(
    collection=TENANTS,
    purpose="The client's instruction where call notes go (Art. 28 GDPR, R-NOTE-1)",
    recipients=(),
    subject_fields={
        SubjectKind.PHONE: ("subjects",),
        SubjectKind.EMAIL: ("subjects",),
        SubjectKind.NAME: ("recipients.contact_person",),
    },
    erase_by_subject=False,
    kept_reason="part of the client's account (R-RET-4): the client changes its recipients",
    export=_own_recipient_entries,
)
INVENTORY = Inventory(
    service="notify",
    passed_on="e-mails and SMS already sent keep the old values; deliveries still pending "
    "carry the corrected ones. Tell the recipients if the error matters (Art. 19 GDPR)",
    collections=(NOTE_COPIES, DELIVERY_LEDGER, CONSENT_REGISTRY, RECIPIENT_LISTS),
)

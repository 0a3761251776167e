"""What personal data intake keeps, for retention sweeps and data-subject requests (issue 11)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_platform.mongo import Document
from switchboard_platform.retention_participant import (
    Inventory,
    PersonalData,
    exported,
)
from switchboard_platform.subjects import subject_key

from .calls import FORGOTTEN
from .repository import CALLS, TENANTS


def _own_entries(doc: Document, identifiers: Sequence[SubjectId]) -> dict[str, JsonValue]:
    """Of a client's profile, only the subject's own entries (never other contact persons)."""
    wanted = {subject_key(i) for i in identifiers}

    def mine(entry: dict[str, object]) -> bool:
        values = [
            (SubjectKind.PHONE, entry.get("phone")),
            (SubjectKind.EMAIL, entry.get("email")),
            (SubjectKind.NAME, entry.get("name")),
            (SubjectKind.PHONE, entry.get("address")),
            (SubjectKind.EMAIL, entry.get("address")),
        ]
        # unvalidated: an address is tried as a phone and as an e-mail, one of them fails
        return any(
            isinstance(v, str)
            and v
            and subject_key(SubjectId.model_construct(kind=k, value=v)) in wanted
            for k, v in values
        )

    whole = exported(doc, TENANT_PROFILES)
    return {
        "id": whole["id"],
        "tenant_id": whole.get("tenant_id"),
        "name": whole.get("name"),
        "contact_persons": [e for e in doc.get("contact_persons") or [] if mine(e)],
        "recipients": [e for e in doc.get("recipients") or [] if mine(e)],
    }


CAPTURED_CALLS = PersonalData(
    collection=CALLS,
    purpose="Call captured by the answering service for the client (Art. 28 GDPR)",
    recipients=("the client the call was for",),
    subject_fields={
        SubjectKind.PHONE: ("caller.phone",),
        SubjectKind.EMAIL: ("caller.email",),
        SubjectKind.NAME: ("caller.name",),
    },
    rectifiable={
        "name": "caller.name",
        "phone": "caller.phone",
        "email": "caller.email",
        "company": "caller.company",
    },
    private_fields=("idempotency_key", "idempotency_fingerprint", "idempotency_expires_at"),
    # R-RET-2: the recording's reference goes after 30 days (at once on a withdrawn consent,
    # R-REC-1), the call's record after 60
    shorter_lived={DataCategory.RECORDING: ("recording.url",)},
    call_field="_id",
    # an erased caller's call keeps its retry key: an agent's retry must not record it again
    tombstone=FORGOTTEN,
)
TENANT_PROFILES = PersonalData(
    collection=TENANTS,
    purpose="The client's account: contact persons and recipients of call notes (Art. 6(1)(b))",
    recipients=("the answering service's staff",),
    subject_fields={
        SubjectKind.PHONE: ("contact_persons.phone", "recipients.address"),
        SubjectKind.EMAIL: ("contact_persons.email", "recipients.address"),
        SubjectKind.NAME: ("contact_persons.name",),
    },
    erase_by_subject=False,
    kept_reason="part of the client's account (R-RET-4): the client changes its contact list",
    export=_own_entries,
)
INVENTORY = Inventory(service="intake", collections=(CAPTURED_CALLS, TENANT_PROFILES))

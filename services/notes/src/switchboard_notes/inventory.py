"""What personal data notes keeps, for retention sweeps and data-subject requests (issue 11)."""

from __future__ import annotations

from datetime import datetime

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectKind
from switchboard_contracts.notes import DeletionReason
from switchboard_platform.mongo import Document
from switchboard_platform.retention_participant import Inventory, PersonalData, Tombstone

from .domain import PERSONAL_FIELDS
from .repository import NOTES


def _erased(now: datetime) -> Document:
    return {
        "deleted_at": now,
        "deleted_by": "retention",
        "deletion_reason": str(DeletionReason.DATA_SUBJECT_REQUEST),
    }


ERASED_NOTE = Tombstone(removes=(*PERSONAL_FIELDS, "rating.comment"), marks=_erased)
"""An erased caller's note becomes the tombstone a client's deletion leaves (decision 0006):
`call.received` stays 30 days on Kafka, and a redelivery must not write the note again."""

INVENTORY = Inventory(
    service="notes",
    collections=(
        PersonalData(
            collection=NOTES,
            purpose="Call note taken for the client, read and rated by it (Art. 28 GDPR)",
            recipients=("the client the call was for", "its recipients of call notes"),
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
            tombstone=ERASED_NOTE,
            # R-RET-2: the recording's reference goes after 30 days (at once on a withdrawn
            # consent, R-REC-1), the note after 60
            shorter_lived={DataCategory.RECORDING: ("recording.url",)},
            call_field="call_id",
        ),
    ),
)
"""A note holds the caller (phone, e-mail, name); its rating lives inside it."""

"""What personal data notes keeps, for retention sweeps and data-subject requests (issue 11)."""

from __future__ import annotations

from switchboard_contracts.common import SubjectKind
from switchboard_platform.retention_participant import Inventory, PersonalData

from .repository import NOTES

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
        ),
    ),
)
"""A note holds the caller (phone, e-mail, name); its rating lives inside it."""

"""Payloads of `notification.*` and `crm.*`: each transfer out of the system (R-API-2)."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .common import Identifier, Int64, LongText, ShortText, Timestamp
from .envelope import EventPayload
from .tenants import Channel
from .topics import CRM_FAILED, CRM_SYNCED, NOTIFICATION_FAILED, NOTIFICATION_SENT

Region = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2,3}$"),
    Field(
        description="Where the destination processes data: EU, EEA or an ISO 3166 country code",
        examples=["EU", "DE", "US"],
    ),
]


EU_EEA = frozenset(
    {
        "EU",
        "EEA",
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
        *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
        *("IS", "LI", "NO"),
    }
)
"""Regions inside the EU/EEA: data going there needs no transfer safeguard (R-SEC-5)."""


class Safeguard(StrEnum):
    """The documented basis for a transfer outside the EU/EEA (Art. 45-47 GDPR)."""

    SCC = "scc"
    ADEQUACY = "adequacy"
    BCR = "bcr"


def outside_eu(region: str) -> bool:
    """True for a region outside the EU/EEA (a transfer there needs a safeguard)."""
    return region not in EU_EEA


class LegalBasis(StrEnum):
    """The Art. 6(1) basis a transfer rests on: (a) consent or (b) contract."""

    CONSENT = "consent"
    CONTRACT = "contract"


class NotificationAttempt(EventPayload):
    """Fields every notification outcome shares: what went to whom, how, and why allowed."""

    notification_id: Identifier
    note_id: Identifier
    tenant_id: Identifier
    channel: Channel
    recipient: ShortText = Field(examples=["empfang@kanzlei-meyer.de", "+4915112345678"])
    legal_basis: LegalBasis
    provider: Identifier = Field(description="The mail or SMS gateway", examples=["smtp", "twilio"])
    provider_region: Region | None = Field(
        default=None, description="Where the provider processes the data (R-SEC-5)"
    )
    safeguard: Safeguard | None = Field(
        default=None,
        description="The transfer safeguard where the provider is outside the EU/EEA (R-SEC-5)",
    )
    attempt: Int64 = Field(default=1, ge=1)
    attempted_at: Timestamp


class NotificationSent(NotificationAttempt):
    """A call note was handed to the mail or SMS provider (R-NOTE-1)."""

    topic = NOTIFICATION_SENT
    version = 1

    provider_message_id: ShortText | None = None


class NotificationFailed(NotificationAttempt):
    """A call note could not be delivered on this attempt."""

    topic = NOTIFICATION_FAILED
    version = 1

    error: LongText
    will_retry: bool


class CrmConnectorKind(StrEnum):
    """How crm-sync reaches the client's CRM."""

    WEBHOOK = "webhook"
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"
    PIPEDRIVE = "pipedrive"


class CrmTransfer(EventPayload):
    """Fields every CRM transfer outcome shares: which note went where, on which basis."""

    transfer_id: Identifier
    note_id: Identifier
    tenant_id: Identifier
    connector: CrmConnectorKind
    destination: ShortText = Field(
        description="Host name of the CRM endpoint", examples=["crm.example.de"]
    )
    destination_region: Region
    safeguard: ShortText | None = Field(
        default=None,
        description="The transfer safeguard for a destination outside the EU/EEA (R-SEC-5)",
        examples=["EU SCC 2021/914"],
    )
    legal_basis: LegalBasis
    attempt: Int64 = Field(default=1, ge=1)
    attempted_at: Timestamp
    operation: Literal["sync", "delete"] = Field(
        default="sync",
        description="Whether the note was written to the CRM or removed from it (R-NOTE-2)",
    )


class CrmSynced(CrmTransfer):
    """A note reached the client's CRM (R-API-1)."""

    topic = CRM_SYNCED
    version = 1

    status_code: int = Field(ge=100, le=599, description="The CRM's HTTP status")


class CrmFailed(CrmTransfer):
    """A note could not be synced to the client's CRM on this attempt."""

    topic = CRM_FAILED
    version = 1

    status_code: int | None = Field(
        default=None, ge=100, le=599, description="The CRM's HTTP status, if it answered"
    )
    error: LongText
    will_retry: bool

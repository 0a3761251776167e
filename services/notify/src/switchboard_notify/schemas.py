"""HTTP request and response shapes of the notify API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from switchboard_contracts.consent import (
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.delivery import LegalBasis, Safeguard
from switchboard_contracts.tenants import Channel
from switchboard_platform.inputs import Moment, clean_line
from switchboard_platform.mongo import Document, as_utc

from .consents import ConsentRecord, subject_of
from .domain import DeliveryStatus
from .service import RecipientState

UtcTime = Annotated[datetime, AfterValidator(as_utc)]
"""A stored time, answered with its UTC offset whatever the server kept."""


def _subject(raw: str) -> str:
    return subject_of(raw).value


SubjectText = Annotated[str, StringConstraints(max_length=254), AfterValidator(_subject)]
"""An e-mail address or a phone number (German notation accepted), normalised."""
TenantId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TextVersion = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(clean_line),
]


class ConsentCreate(BaseModel):
    """A consent or its withdrawal, as the client (or an operator for it) declares it."""

    model_config = ConfigDict(extra="forbid")

    subject: SubjectText = Field(examples=["empfang@kanzlei-meyer.de", "0151 12345678"])
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    method: ConsentMethod
    text_version: TextVersion = Field(examples=["notification-consent-de-2025-01"])
    occurred_at: Moment | None = Field(
        default=None, description="When the subject declared it; default: now"
    )
    tenant_id: TenantId | None = Field(
        default=None, description="Operators name the tenant; a client's is its own"
    )


class ConsentPublic(BaseModel):
    """One record of the consent registry (R-CON-3)."""

    consent_id: str
    tenant_id: str
    subject: str
    subject_kind: str
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    occurred_at: UtcTime
    method: ConsentMethod
    text_version: str
    recorded_by: str
    recorded_at: UtcTime
    call_id: str | None = None

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentPublic:
        """Shape a record for the API."""
        return cls(
            consent_id=record.consent_id,
            tenant_id=record.tenant_id,
            subject=record.subject.value,
            subject_kind=str(record.subject.kind),
            purpose=record.purpose,
            channel=record.channel,
            status=record.status,
            occurred_at=record.occurred_at,
            method=record.method,
            text_version=record.text_version,
            recorded_by=record.recorded_by,
            recorded_at=record.recorded_at,
            call_id=record.call_id,
        )


class ConsentState(BaseModel):
    """A recipient's current consent for notifications: `none` if never declared."""

    status: ConsentStatus | None
    occurred_at: UtcTime | None = None
    method: ConsentMethod | None = None
    text_version: str | None = None
    consent_id: str | None = None


class RecipientPublic(BaseModel):
    """A recipient of the tenant's call notes and its current consent."""

    channel: Channel
    address: str
    contact_person: str | None
    valid: bool = Field(description="False: the address is not a usable e-mail or mobile number")
    consent: ConsentState

    @classmethod
    def of(cls, state: RecipientState) -> RecipientPublic:
        """Shape a recipient and its consent for the API."""
        r, c = state.recipient, state.consent
        consent = (
            ConsentState(status=None)
            if c is None
            else ConsentState(
                status=c.status,
                occurred_at=c.occurred_at,
                method=c.method,
                text_version=c.text_version,
                consent_id=c.consent_id,
            )
        )
        return cls(
            channel=r.channel,
            address=r.address,
            contact_person=r.contact_person,
            valid=r.valid,
            consent=consent,
        )


class DeliveryPublic(BaseModel):
    """A ledger entry: what went (or goes) to whom, when, on which basis; never the message."""

    id: str
    tenant_id: str
    note_id: str
    call_id: str
    channel: Channel
    recipient: str
    contact_person: str | None = None
    purpose: ConsentPurpose
    legal_basis: LegalBasis
    status: DeliveryStatus
    reason: str | None = None
    attempts: int
    last_error: str | None = None
    provider: str | None = None
    provider_region: str | None = Field(
        default=None, description="Where the provider processes the data (R-SEC-5)"
    )
    safeguard: Safeguard | None = Field(
        default=None, description="The transfer safeguard for a provider outside the EU/EEA"
    )
    provider_message_id: str | None = None
    message_id: str | None = None
    created_at: UtcTime
    updated_at: UtcTime
    sent_at: UtcTime | None = None
    next_attempt_at: UtcTime | None = None

    @classmethod
    def from_document(cls, doc: Document) -> DeliveryPublic:
        """Shape a stored delivery for the API."""
        due = doc.get("due_at")
        pending = doc.get("status") == DeliveryStatus.PENDING and isinstance(due, int | float)
        next_at = datetime.fromtimestamp(float(due), UTC) if pending and due is not None else None
        return cls.model_validate({**doc, "id": doc["_id"], "next_attempt_at": next_at})


class DeliveryPage(BaseModel):
    """One page of ledger entries, newest first; pass `next_cursor` back for the next page."""

    items: list[DeliveryPublic]
    next_cursor: str | None

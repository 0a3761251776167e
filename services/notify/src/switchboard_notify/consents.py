"""The consent registry's rules: records, subjects and current state (R-CON-1..3, R-REC-1).

The registry is append-only: a withdrawal is a new record, nothing is overwritten, and the
current state of (tenant, subject, purpose, channel) is its latest record that has taken
effect. A consent is given in a tenant's context (a client's recipient, a caller of that
client), so every record and every lookup carries the tenant.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from switchboard_contracts import Event
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.tenants import Channel
from switchboard_platform.inputs import InvalidInput, check_email, to_e164

from .domain import Recipient, TenantMismatch, TenantProfile

_ONBOARDING_NAMESPACE = uuid.UUID("3e9b7a10-64c2-4d0f-8f1e-2a5c7b9d1e36")
_PHONE_CHARACTERS = re.compile(r"[0-9+()/. -]{3,40}")
FUTURE_TOLERANCE = timedelta(minutes=5)
"""A declaration may be dated this far ahead of our clock (clock skew), no further."""
ONBOARDING_RECORDER = "system:onboarding"


def subject_of(raw: str) -> SubjectId:
    """An e-mail address or a phone number (German notation accepted), normalised.

    Raises InvalidInput naming the rule, never the value.
    """
    text = raw.strip()
    if "@" in text:
        return SubjectId(kind=SubjectKind.EMAIL, value=check_email(text).lower())
    if not _PHONE_CHARACTERS.fullmatch(text):  # phonenumbers would read letters as a keypad's
        raise InvalidInput("must be an e-mail address or a phone number")
    try:
        return SubjectId(kind=SubjectKind.PHONE, value=to_e164(text))
    except InvalidInput:
        raise InvalidInput("must be an e-mail address or a phone number") from None


def consent_channel(channel: Channel) -> ConsentChannel:
    """The consent channel that covers a delivery channel."""
    return ConsentChannel.EMAIL if channel is Channel.EMAIL else ConsentChannel.SMS


def recipient_subject(recipient: Recipient) -> SubjectId:
    """The data subject a recipient address identifies."""
    kind = SubjectKind.EMAIL if recipient.channel is Channel.EMAIL else SubjectKind.PHONE
    return SubjectId(kind=kind, value=recipient.address)


_CHANNELS: dict[tuple[ConsentPurpose, SubjectKind], frozenset[ConsentChannel]] = {
    (ConsentPurpose.NOTIFICATION, SubjectKind.EMAIL): frozenset({ConsentChannel.EMAIL}),
    (ConsentPurpose.NOTIFICATION, SubjectKind.PHONE): frozenset({ConsentChannel.SMS}),
    (ConsentPurpose.MARKETING, SubjectKind.EMAIL): frozenset({ConsentChannel.EMAIL}),
    (ConsentPurpose.MARKETING, SubjectKind.PHONE): frozenset(
        {ConsentChannel.SMS, ConsentChannel.PHONE}
    ),
    (ConsentPurpose.RECORDING, SubjectKind.PHONE): frozenset({ConsentChannel.NONE}),
}


def check_declaration(
    subject: SubjectId,
    purpose: ConsentPurpose,
    channel: ConsentChannel,
    occurred_at: datetime,
    now: datetime,
) -> None:
    """Refuse a channel the subject cannot be reached on, or a declaration dated ahead."""
    if channel not in _CHANNELS.get((purpose, subject.kind), frozenset()):
        raise InvalidInput("does not fit the subject and purpose", field="channel")
    if occurred_at > now + FUTURE_TOLERANCE:
        raise InvalidInput("must not lie in the future", field="occurred_at")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """Who consented to what, when, how and to which wording (Art. 7(1), R-CON-3)."""

    consent_id: str
    tenant_id: str
    subject: SubjectId
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    occurred_at: datetime
    method: ConsentMethod
    text_version: str
    recorded_by: str
    recorded_at: datetime
    call_id: str | None = None

    @property
    def category(self) -> DataCategory:
        """A caller's recording consent belongs to the call; a recipient's to the account."""
        if self.purpose is ConsentPurpose.RECORDING:
            return DataCategory.CALL_DATA
        return DataCategory.CUSTOMER_ACCOUNT

    @property
    def retention_from(self) -> datetime | None:
        """A recording consent's clock starts with the declaration (the call's, R-RET-1).

        An account's consent (a recipient's) is proof for as long as the account runs: no
        clock of its own, so no category sweep takes it; the tenant's offboarding order
        (R-RET-4, five years after the contract ended) erases it with the rest of the account.
        """
        if self.category is DataCategory.CALL_DATA:
            return self.occurred_at
        return None

    @classmethod
    def from_event(cls, event: Event[ConsentChanged], *, recorded_at: datetime) -> ConsentRecord:
        """The record a `consent.changed` event carries (from any service)."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        return cls(
            consent_id=data.consent_id,
            tenant_id=data.tenant_id,
            subject=data.subject,
            purpose=data.purpose,
            channel=data.channel,
            status=data.status,
            occurred_at=data.occurred_at,
            method=data.method,
            text_version=data.text_version,
            recorded_by=data.recorded_by,
            recorded_at=recorded_at,
            call_id=data.call_id,
        )

    def to_payload(self) -> ConsentChanged:
        """The `consent.changed` payload announcing this record."""
        return ConsentChanged(
            consent_id=self.consent_id,
            tenant_id=self.tenant_id,
            subject=self.subject,
            purpose=self.purpose,
            channel=self.channel,
            status=self.status,
            occurred_at=self.occurred_at,
            method=self.method,
            text_version=self.text_version,
            recorded_by=self.recorded_by,
            call_id=self.call_id,
        )


def onboarding_consent(
    tenant: TenantProfile, recipient: Recipient, *, notice_version: str, recorded_at: datetime
) -> ConsentRecord:
    """The consent a recipient named at onboarding carries: the client's written instruction.

    Its id is derived from tenant, channel and address, so it is recorded once, however
    often the tenant changes or `tenant.changed` is replayed.
    """
    key = f"{tenant.tenant_id}\x00{recipient.channel}\x00{recipient.address}"
    return ConsentRecord(
        consent_id=f"onboarding-{uuid.uuid5(_ONBOARDING_NAMESPACE, key)}",
        tenant_id=tenant.tenant_id,
        subject=recipient_subject(recipient),
        purpose=ConsentPurpose.NOTIFICATION,
        channel=consent_channel(recipient.channel),
        status=ConsentStatus.GRANTED,
        occurred_at=tenant.changed_at,
        method=ConsentMethod.WRITTEN,
        text_version=notice_version,
        recorded_by=ONBOARDING_RECORDER,
        recorded_at=recorded_at,
    )


def current_record(records: Iterable[ConsentRecord], now: datetime) -> ConsentRecord | None:
    """The latest record that has taken effect by `now` (ties: the one recorded last)."""
    effective = [r for r in records if r.occurred_at <= now]
    if not effective:
        return None
    return max(effective, key=lambda r: (r.occurred_at, r.recorded_at))


def current_status(records: Iterable[ConsentRecord], now: datetime) -> ConsentStatus | None:
    """Granted, withdrawn, or None when the subject never declared anything."""
    record = current_record(records, now)
    return None if record is None else record.status


@dataclass(frozen=True, slots=True)
class Declaration:
    """A consent or withdrawal declared over the API, before it is a record."""

    tenant_id: str
    subject: SubjectId
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    method: ConsentMethod
    text_version: str
    recorded_by: str
    occurred_at: datetime | None = None

    def to_record(self, *, consent_id: str, now: datetime) -> ConsentRecord:
        """The record of this declaration; InvalidInput naming the field that breaks a rule."""
        occurred_at = self.occurred_at or now
        check_declaration(self.subject, self.purpose, self.channel, occurred_at, now)
        return ConsentRecord(
            consent_id=consent_id,
            tenant_id=self.tenant_id,
            subject=self.subject,
            purpose=self.purpose,
            channel=self.channel,
            status=self.status,
            occurred_at=occurred_at,
            method=self.method,
            text_version=self.text_version,
            recorded_by=self.recorded_by,
            recorded_at=now,
        )

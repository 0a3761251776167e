"""What notify knows and decides: tenants' recipients, note copies, deliveries (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from enum import StrEnum

from switchboard_contracts import Event
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import Caller, SubjectId
from switchboard_contracts.consent import ConsentPurpose, ConsentStatus
from switchboard_contracts.delivery import LegalBasis
from switchboard_contracts.notes import NoteCreated
from switchboard_contracts.tenants import Channel, ContractStatus, TenantChanged
from switchboard_contracts.tenants import Recipient as RecipientPayload
from switchboard_platform.inputs import InvalidInput, check_email, to_mobile_e164
from switchboard_platform.subjects import subject_ids

_DELIVERY_NAMESPACE = uuid.UUID("0d6c3f2e-8b1a-4f57-9a43-7e2b51c9d0a4")
RESTRICTED = "restricted (Art. 18)"
"""Why a delivery about a caller who restricted processing (R-DSR-18) was not sent."""
Restricted = Callable[[str, Sequence[SubjectId]], Awaitable[bool]]
"""Whether processing a subject is restricted for a tenant (the participant's `is_restricted`)."""


async def never_restricted(tenant_id: str, identifiers: Sequence[SubjectId]) -> bool:
    """The default where no retention participant is attached (unit tests)."""
    return False


def caller_ids(caller: Caller | None) -> list[SubjectId]:
    """The identifiers of a note's caller: the data subject a delivery is about."""
    if caller is None:
        return []
    return subject_ids(phone=caller.phone, email=caller.email, name=caller.name)


class TenantMismatch(ValueError):
    """The event's envelope and its payload name different tenants: refuse, never guess."""


class DeliveryStatus(StrEnum):
    """Where a delivery stands; only `pending` ever changes again (a retry reopens `failed`)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


def normalise_address(channel: Channel, raw: str) -> str:
    """A recipient address as stored and compared: lower-case e-mail, or E.164 mobile number."""
    if channel is Channel.EMAIL:
        return check_email(raw).lower()
    return to_mobile_e164(raw)


@dataclass(frozen=True, slots=True)
class Recipient:
    """An address the client told us to send call notes to (R-ONB-1, R-NOTE-1)."""

    channel: Channel
    address: str
    contact_person: str | None = None
    valid: bool = True

    @classmethod
    def from_payload(cls, given: RecipientPayload) -> Recipient:
        """Normalise an onboarded recipient; an unusable address is kept, marked invalid."""
        try:
            address, valid = normalise_address(given.channel, given.address), True
        except InvalidInput:
            address, valid = given.address, False
        return cls(given.channel, address, given.contact_person, valid)


@dataclass(frozen=True, slots=True)
class TenantProfile:
    """What notify needs of a tenant: recipients, contract status, secrecy (R-SEC-3)."""

    tenant_id: str
    secrecy_bound: bool
    contract_status: ContractStatus
    recipients: tuple[Recipient, ...]
    changed_at: datetime
    terminated_on: date | None = None
    category: DataCategory = DataCategory.CUSTOMER_ACCOUNT

    @classmethod
    def from_event(cls, event: Event[TenantChanged]) -> TenantProfile:
        """The profile a `tenant.changed` event carries."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        unique = {(r.channel, r.address): r for r in map(Recipient.from_payload, data.recipients)}
        return cls(
            tenant_id=data.tenant_id,
            secrecy_bound=data.secrecy_bound or data.industry.secrecy_bound,
            contract_status=data.contract_status,
            recipients=tuple(unique.values()),
            changed_at=event.time,
            terminated_on=data.contract_terminated_on,
        )

    @property
    def receives_notes(self) -> bool:
        """A terminated contract ends the service: its notes are not sent."""
        return self.contract_status is not ContractStatus.TERMINATED

    @property
    def retention_from(self) -> datetime | None:
        """The account's retention clock starts when the contract ends (R-RET-4)."""
        if self.terminated_on is None:
            return None
        return datetime.combine(self.terminated_on, time(), tzinfo=UTC)

    def instructs(self, channel: Channel, address: str) -> bool:
        """Whether the client still names this address as a recipient."""
        return any(
            r.valid and (r.channel, r.address) == (channel, address) for r in self.recipients
        )


@dataclass(frozen=True, slots=True)
class NoteCopy:
    """The part of a call note notify needs to tell the client about it."""

    note_id: str
    tenant_id: str
    call_id: str
    caller: Caller | None
    concern: str | None
    contact_person: str | None
    started_at: datetime
    duration_seconds: int | None = None
    category: DataCategory = DataCategory.CALL_DATA
    created_at: datetime | None = None
    """When notes stored the note: where the note_to_email/sms flows start (metrics only)."""
    trace_id: str | None = None
    """The trace of the `note.created` that brought it: the flows' exemplar (metrics only)."""

    @classmethod
    def from_event(cls, event: Event[NoteCreated]) -> NoteCopy:
        """The copy of the note a `note.created` event announces."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        return cls(
            note_id=data.note_id,
            tenant_id=data.tenant_id,
            call_id=data.call_id,
            caller=data.caller,
            concern=data.concern,
            contact_person=data.contact_person,
            started_at=data.started_at.astimezone(UTC),
            duration_seconds=data.duration_seconds,
            created_at=data.created_at.astimezone(UTC),
        )

    @property
    def retention_from(self) -> datetime:
        """Call data's retention clock starts with the call (R-RET-1)."""
        return self.started_at

    def without_content(self) -> NoteCopy:
        """The copy kept for a secrecy-bound tenant: no caller, no concern (R-SEC-3)."""
        return replace(self, caller=None, concern=None)


def delivery_id(note_id: str, channel: Channel, address: str) -> str:
    """A delivery's id, derived from note and recipient: a redelivered note maps to it again."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{note_id}\x00{channel}\x00{address}"))


def message_id(delivery: str, domain: str) -> str:
    """The stable RFC 5322 Message-ID of a delivery's e-mail: every repeat carries it."""
    return f"<{delivery}@{domain}>"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One note to one recipient over one channel: an entry of the delivery ledger."""

    id: str
    tenant_id: str
    note_id: str
    call_id: str
    channel: Channel
    recipient: str
    contact_person: str | None
    purpose: ConsentPurpose
    legal_basis: LegalBasis
    status: DeliveryStatus
    created_at: datetime
    retention_from: datetime
    attempt_limit: int
    message_id: str | None
    reason: str | None = None
    category: DataCategory = DataCategory.CALL_DATA


def plan_deliveries(
    note: NoteCopy, tenant: TenantProfile, *, now: datetime, attempt_limit: int, id_domain: str
) -> list[Delivery]:
    """One delivery per valid recipient; all cancelled when the contract has ended."""
    planned = []
    for recipient in tenant.recipients:
        if not recipient.valid:
            continue
        ident = delivery_id(note.note_id, recipient.channel, recipient.address)
        open_ = tenant.receives_notes
        planned.append(
            Delivery(
                id=ident,
                tenant_id=note.tenant_id,
                note_id=note.note_id,
                call_id=note.call_id,
                channel=recipient.channel,
                recipient=recipient.address,
                contact_person=recipient.contact_person,
                purpose=ConsentPurpose.NOTIFICATION,
                legal_basis=LegalBasis.CONSENT,
                status=DeliveryStatus.PENDING if open_ else DeliveryStatus.CANCELLED,
                created_at=now,
                retention_from=note.retention_from,
                attempt_limit=attempt_limit,
                message_id=message_id(ident, id_domain)
                if recipient.channel is Channel.EMAIL
                else None,
                reason=None if open_ else "contract terminated",
            )
        )
    return planned


class Verdict(StrEnum):
    """What the sender does with a claimed delivery."""

    SEND = "send"
    SUPPRESS = "suppress"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict and, when it is not to send, why (stored as the delivery's reason)."""

    verdict: Verdict
    reason: str | None = None


def decide(
    *,
    channel: Channel,
    recipient: str,
    purpose: ConsentPurpose,
    tenant: TenantProfile | None,
    note: NoteCopy | None,
    consent: ConsentStatus | None,
    restricted: bool = False,
) -> Decision:
    """Whether a delivery may go out now (R-CON-1, R-CON-2, R-DSR-18), checked at sending.

    `restricted`: the caller the note is about restricted its processing (Art. 18).
    """
    if note is None:
        return Decision(Verdict.CANCEL, "note deleted")
    if tenant is None or not tenant.receives_notes:
        return Decision(Verdict.CANCEL, "contract terminated")
    if restricted:
        return Decision(Verdict.SUPPRESS, RESTRICTED)
    if purpose is ConsentPurpose.NOTIFICATION and not tenant.instructs(channel, recipient):
        return Decision(Verdict.SUPPRESS, "recipient removed by the client")
    if consent is not ConsentStatus.GRANTED:
        return Decision(Verdict.SUPPRESS, f"no granted consent for {purpose} by {channel}")
    return Decision(Verdict.SEND)

"""What connectors and transfers are, and the rules that decide whether a note may leave.

No I/O here: the transfer loop and the use cases ask these functions, and the answer is
the same wherever it is asked (R-SEC-3, R-SEC-5).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.delivery import CrmConnectorKind, Safeguard, outside_eu
from switchboard_contracts.notes import NoteCreated
from switchboard_contracts.tenants import ContractStatus

Kind = CrmConnectorKind
_NAMESPACE = uuid.UUID("1c4b8f3e-0d55-4b8e-9f0e-2f3c7a61d5a4")


RESTRICTED = "restricted (Art. 18)"
"""Why a transfer about a caller who restricted processing (R-DSR-18) was cancelled."""
Restricted = Callable[[str, Sequence[SubjectId]], Awaitable[bool]]
"""Whether processing a subject is restricted for a tenant (the participant's `is_restricted`)."""


async def never_restricted(tenant_id: str, identifiers: Sequence[SubjectId]) -> bool:
    """The default where no retention participant is attached (unit tests)."""
    return False


class ConnectorStatus(StrEnum):
    """Where a connector stands, as the client sees it."""

    ACTIVE = "active"
    NEEDS_ATTENTION = "needs_attention"
    DISABLED = "disabled"


class Operation(StrEnum):
    """What a transfer does in the CRM."""

    SYNC = "sync"
    DELETE = "delete"


class TransferStatus(StrEnum):
    """Where a transfer stands; the last five are final."""

    PENDING = "pending"
    SENDING = "sending"
    SYNCED = "synced"
    DELETED = "deleted"
    NOT_DELETED = "not_deleted"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


OPEN_STATUSES = (TransferStatus.PENDING, TransferStatus.SENDING)


def connector_id(tenant_id: str, kind: Kind) -> str:
    """The id of a tenant's connector of one kind (one per tenant and kind)."""
    return f"{tenant_id}:{kind}"


def transfer_id(tenant_id: str, note_id: str, kind: Kind, operation: Operation) -> str:
    """A transfer's id, derived from what it does: a redelivered event maps to the same one."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}:{note_id}:{kind}:{operation}"))


def connector_status(enabled: bool, attention: str | None) -> ConnectorStatus:
    """The status a connector shows: disabled, needs attention, or active."""
    if not enabled:
        return ConnectorStatus.DISABLED
    if attention:
        return ConnectorStatus.NEEDS_ATTENTION
    return ConnectorStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class TenantProfile:
    """What crm-sync knows of a tenant, from `tenant.changed`."""

    tenant_id: str
    secrecy_bound: bool
    contract_status: ContractStatus


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a connector sends, for the policy check and the transfer log."""

    host: str
    region: str
    safeguard: Safeguard | None
    secrecy_opt_in: bool


class Verdict(StrEnum):
    """The policy's answer for one transfer of content."""

    ALLOW = "allow"
    WAIT = "wait"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict and, unless allowed, the rule behind it (logged; no personal data)."""

    verdict: Verdict
    reason: str = ""


def may_transfer(
    tenant: TenantProfile | None,
    destination: Destination,
    *,
    waited: timedelta,
    grace: timedelta,
) -> Decision:
    """Whether note content may go to `destination` now.

    An unknown tenant is waited for (its `tenant.changed` may come after its first note),
    then treated as secrecy-bound: fail closed.
    """
    if outside_eu(destination.region) and destination.safeguard is None:
        return Decision(Verdict.REFUSE, "R-SEC-5: destination outside the EU/EEA without safeguard")
    if tenant is None:
        if waited < grace:
            return Decision(Verdict.WAIT, "tenant profile not known yet")
        secrecy_bound = True
    else:
        if tenant.contract_status is ContractStatus.TERMINATED:
            return Decision(Verdict.REFUSE, "the tenant's contract is terminated")
        secrecy_bound = tenant.secrecy_bound
    if secrecy_bound and not destination.secrecy_opt_in:
        return Decision(
            Verdict.REFUSE, "R-SEC-3: secrecy-bound tenant has not opted in to CRM transfers"
        )
    return Decision(Verdict.ALLOW)


@dataclass(frozen=True, slots=True)
class NoteContent:
    """The part of a note a CRM receives (kept with the transfer until it is done)."""

    note_id: str
    call_id: str
    tenant_id: str
    caller_name: str
    caller_phone: str
    caller_email: str | None
    caller_company: str | None
    concern: str
    contact_person: str | None
    started_at: datetime
    duration_seconds: int | None
    forwarded_from: str | None
    created_at: datetime

    @classmethod
    def of(cls, note: NoteCreated) -> NoteContent:
        """The content of a `note.created` payload."""
        return cls(
            note_id=note.note_id,
            call_id=note.call_id,
            tenant_id=note.tenant_id,
            caller_name=note.caller.name,
            caller_phone=note.caller.phone,
            caller_email=note.caller.email,
            caller_company=note.caller.company,
            concern=note.concern,
            contact_person=note.contact_person,
            started_at=note.started_at.astimezone(UTC),
            duration_seconds=note.duration_seconds,
            forwarded_from=note.forwarded_from,
            created_at=note.created_at.astimezone(UTC),
        )

    def to_document(self) -> dict[str, Any]:
        """As stored inside a transfer (times as ISO strings: they are never queried)."""
        return {
            "note_id": self.note_id,
            "call_id": self.call_id,
            "caller_name": self.caller_name,
            "caller_phone": self.caller_phone,
            "caller_email": self.caller_email,
            "caller_company": self.caller_company,
            "concern": self.concern,
            "contact_person": self.contact_person,
            "started_at": self.started_at.isoformat(),
            "duration_seconds": self.duration_seconds,
            "forwarded_from": self.forwarded_from,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_document(cls, tenant_id: str, doc: dict[str, Any]) -> NoteContent:
        """Read back what `to_document` stored."""
        return cls(
            note_id=doc["note_id"],
            call_id=doc["call_id"],
            tenant_id=tenant_id,
            caller_name=doc["caller_name"],
            caller_phone=doc["caller_phone"],
            caller_email=doc.get("caller_email"),
            caller_company=doc.get("caller_company"),
            concern=doc["concern"],
            contact_person=doc.get("contact_person"),
            started_at=datetime.fromisoformat(doc["started_at"]),
            duration_seconds=doc.get("duration_seconds"),
            forwarded_from=doc.get("forwarded_from"),
            created_at=datetime.fromisoformat(doc["created_at"]),
        )

    @property
    def caller(self) -> list[SubjectId]:
        """The caller's identifiers: the data subject whose data a transfer carries."""
        ids = [SubjectId(kind=SubjectKind.PHONE, value=self.caller_phone)]
        if self.caller_email:
            ids.append(SubjectId(kind=SubjectKind.EMAIL, value=self.caller_email))
        if self.caller_name:
            ids.append(SubjectId(kind=SubjectKind.NAME, value=self.caller_name))
        return ids

    @property
    def ended_at(self) -> datetime:
        """When the call ended (its start when the duration is unknown)."""
        return self.started_at + timedelta(seconds=self.duration_seconds or 0)

    @property
    def first_name(self) -> str | None:
        """All but the last word of the caller's name (None for a one-word name)."""
        parts = self.caller_name.rsplit(None, 1)
        return parts[0] if len(parts) == 2 else None

    @property
    def last_name(self) -> str:
        """The last word of the caller's name."""
        return self.caller_name.rsplit(None, 1)[-1]

    @property
    def title(self) -> str:
        """A one-line subject for the CRM activity."""
        return f"Anruf von {self.caller_name}"[:200]

    @property
    def summary(self) -> str:
        """The activity's text: concern, contact person, caller."""
        lines = [self.concern, ""]
        if self.contact_person:
            lines.append(f"Ansprechpartner: {self.contact_person}")
        caller = self.caller_name
        if self.caller_company:
            caller += f" ({self.caller_company})"
        lines.append(f"Anrufer: {caller}, {self.caller_phone}")
        if self.caller_email:
            lines.append(f"E-Mail: {self.caller_email}")
        return "\n".join(lines)

"""HTTP request and response shapes of the crm-sync API (never a credential in an answer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from switchboard_contracts.delivery import Region, Safeguard
from switchboard_platform.mongo import Document, as_utc

from .domain import ConnectorStatus, Kind, Operation, TransferStatus, connector_status
from .mapping import FieldMapping, effective

UtcTime = Annotated[datetime, AfterValidator(as_utc)]


class ConnectorPut(BaseModel):
    """A connector's configuration; fields left out keep their stored value.

    `credentials` by kind: hubspot `{"token"}`, salesforce `{"instance_url", "token"}`,
    pipedrive `{"api_token"}`, webhook `{"url", "secret"?}` (a `whsec_` secret is generated
    and answered once when none is given). They are required for a new connector, written
    only, and never answered.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    credentials: dict[str, Any] | None = Field(default=None, max_length=10)
    region: Region | None = Field(
        default=None, description="Where the destination processes data (required when new)"
    )
    safeguard: Safeguard | None = Field(
        default=None, description="Required for a region outside the EU/EEA (R-SEC-5)"
    )
    mapping: FieldMapping | None = None
    secrecy_opt_in: bool | None = Field(
        default=None,
        description="A secrecy-bound tenant's explicit consent that note content may go to "
        "this CRM (R-SEC-3); without it nothing leaves",
    )


class ConnectorPublic(BaseModel):
    """A connector as the client sees it: configuration and health, never a secret."""

    kind: Kind
    tenant_id: str
    status: ConnectorStatus
    enabled: bool
    attention: str | None = Field(
        default=None, description="Why it needs attention: credentials_refused, …"
    )
    disabled_reason: str | None = None
    destination: str = Field(description="Host name the data goes to")
    region: str
    safeguard: Safeguard | None = None
    secrecy_opt_in: bool
    mapping: dict[str, Any] = Field(description="The mapping in force, defaults included")
    credentials_set: bool
    credentials_updated_at: UtcTime | None = None
    last_success_at: UtcTime | None = None
    last_failure_at: UtcTime | None = None
    last_status_code: int | None = None
    paused_until: datetime | None = Field(
        default=None, description="Rate-limited or circuit open until then"
    )
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def from_document(cls, doc: Document) -> ConnectorPublic:
        """Shape a stored connector for the API."""
        kind = Kind(doc["kind"])
        paused = float(doc.get("paused_until") or 0)
        return cls(
            kind=kind,
            tenant_id=doc["tenant_id"],
            status=connector_status(bool(doc.get("enabled")), doc.get("attention")),
            enabled=bool(doc.get("enabled")),
            attention=doc.get("attention"),
            disabled_reason=doc.get("disabled_reason"),
            destination=doc.get("destination") or "",
            region=doc["region"],
            safeguard=doc.get("safeguard"),
            secrecy_opt_in=bool(doc.get("secrecy_opt_in")),
            mapping=effective(kind, FieldMapping.model_validate(doc.get("mapping") or {})),
            credentials_set=doc.get("credentials_updated_at") is not None,
            credentials_updated_at=doc.get("credentials_updated_at"),
            last_success_at=doc.get("last_success_at"),
            last_failure_at=doc.get("last_failure_at"),
            last_status_code=doc.get("last_status_code"),
            paused_until=datetime.fromtimestamp(paused, UTC) if paused else None,
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at") or doc["created_at"],
        )


class ConnectorSaved(ConnectorPublic):
    """The answer to `PUT`: the connector, plus a generated webhook secret, this once."""

    secret: str | None = Field(
        default=None,
        description="The generated `whsec_` secret: shown only in this answer, store it now",
    )


class ConnectorTest(BaseModel):
    """What a harmless test call to the CRM answered."""

    ok: bool
    status_code: int | None
    detail: str


class TransferLogEntry(BaseModel):
    """One attempt's outcome (R-API-2)."""

    attempt: int
    at: UtcTime
    operation: Operation
    outcome: str
    status_code: int | None
    detail: str
    will_retry: bool
    destination: str
    destination_region: str
    safeguard: str | None
    legal_basis: str


class TransferPublic(BaseModel):
    """A transfer of one note to one connector (or its deletion there), with its log."""

    id: str
    note_id: str
    connector: Kind
    operation: Operation
    status: TransferStatus
    destination: str
    destination_region: str
    safeguard: str | None
    legal_basis: str
    attempts: int
    last_status_code: int | None = None
    next_attempt_at: datetime | None = None
    created_at: UtcTime
    updated_at: UtcTime
    log: list[TransferLogEntry]

    @classmethod
    def from_document(cls, doc: Document) -> TransferPublic:
        """Shape a stored transfer for the API (its content is never shown)."""
        status = TransferStatus(doc["status"])
        waiting = status is TransferStatus.PENDING
        entries = [e for e in doc.get("log") or [] if isinstance(e, dict)]
        return cls(
            id=doc["_id"],
            note_id=doc["note_id"],
            connector=Kind(doc["connector"]),
            operation=Operation(doc["operation"]),
            status=status,
            destination=doc.get("destination") or "",
            destination_region=doc.get("destination_region") or "",
            safeguard=doc.get("safeguard"),
            legal_basis=doc.get("legal_basis") or "contract",
            attempts=int(doc.get("attempts") or 0),
            last_status_code=doc.get("last_status_code"),
            next_attempt_at=datetime.fromtimestamp(float(doc["due_at"]), UTC) if waiting else None,
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at") or doc["created_at"],
            log=sorted((TransferLogEntry.model_validate(e) for e in entries), key=lambda e: e.at),
        )


class TransferPage(BaseModel):
    """One page of the transfer log, newest first; pass `next_cursor` back for the next."""

    items: list[TransferPublic]
    next_cursor: str | None

"""The record of each transfer outcome: a transfer-log entry and a `crm.*` event (R-API-2).

Both say which note went where (host and region), on which legal basis and safeguard,
with which status code, on which attempt, and when; neither ever holds note content,
a URL or a credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switchboard_contracts import Event, make_event
from switchboard_contracts.delivery import CrmFailed, CrmSynced, LegalBasis

from .domain import Kind

SOURCE = "/switchboard/crm-sync"
LEGAL_BASIS = LegalBasis.CONTRACT
"""Notes go to the client's own CRM on the client's instruction (Art. 28, Art. 6(1)(b))."""
UNKNOWN_DESTINATION = "unknown"


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who, what and where of one transfer attempt."""

    transfer_id: str
    operation: str
    note_id: str
    tenant_id: str
    kind: Kind
    destination: str
    region: str
    safeguard: str | None
    attempt: int
    at: datetime

    def _common(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "note_id": self.note_id,
            "tenant_id": self.tenant_id,
            "connector": self.kind,
            "destination": (self.destination or UNKNOWN_DESTINATION)[:200],
            "destination_region": self.region,
            "safeguard": self.safeguard,
            "legal_basis": LEGAL_BASIS,
            "attempt": max(1, self.attempt),
            "attempted_at": self.at,
            "operation": "delete" if self.operation == "delete" else "sync",
        }

    def synced(self, status_code: int) -> Event[CrmSynced]:
        """The `crm.synced` event of a successful attempt."""
        payload = CrmSynced(**self._common(), status_code=status_code)
        return make_event(payload, tenant_id=self.tenant_id, source=SOURCE, subject=self.note_id)

    def failed(self, status_code: int | None, error: str, *, will_retry: bool) -> Event[CrmFailed]:
        """The `crm.failed` event of an attempt that did not (yet) succeed."""
        payload = CrmFailed(
            **self._common(), status_code=status_code, error=error[:5000], will_retry=will_retry
        )
        return make_event(payload, tenant_id=self.tenant_id, source=SOURCE, subject=self.note_id)

    def entry(
        self, outcome: str, *, status_code: int | None, detail: str, will_retry: bool
    ) -> dict[str, Any]:
        """The transfer-log entry of this attempt's outcome."""
        return {
            "attempt": max(1, self.attempt),
            "at": self.at.isoformat(),
            "operation": self.operation,
            "outcome": outcome,
            "status_code": status_code,
            "detail": detail[:500],
            "will_retry": will_retry,
            "destination": self.destination or UNKNOWN_DESTINATION,
            "destination_region": self.region,
            "safeguard": self.safeguard,
            "legal_basis": str(LEGAL_BASIS),
        }

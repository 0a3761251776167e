"""What the sender reads for a batch of claimed deliveries, in a few queries per tenant.

Read right after the claim and just before sending, so each delivery is checked against
the state of that moment: its note (still there?), its tenant (contract running, recipient
still instructed, secrecy), the consent records of its recipient (R-CON-1/2), and whether
the note's caller restricted processing (R-DSR-18).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from switchboard_contracts.consent import ConsentChannel, ConsentPurpose, ConsentStatus
from switchboard_platform.mongo import Document

from .consents import ConsentRecord, current_status
from .domain import NoteCopy, Restricted, TenantProfile, caller_ids, never_restricted
from .registry import ConsentRegistry
from .repository import NotesRepository, TenantsRepository


@dataclass
class Circumstances:
    """Tenants, live notes and consent records of one batch."""

    tenants: dict[str, TenantProfile | None] = field(default_factory=dict)
    notes: dict[tuple[str, str], NoteCopy] = field(default_factory=dict)
    records: dict[tuple[str, str], list[ConsentRecord]] = field(default_factory=dict)
    restricted: set[tuple[str, str]] = field(default_factory=set)
    """(tenant, note) of notes whose caller restricted processing (R-DSR-18)."""

    def tenant(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's profile, or None if unknown."""
        return self.tenants.get(tenant_id)

    def note(self, tenant_id: str, note_id: str) -> NoteCopy | None:
        """The live note, or None if it was deleted."""
        return self.notes.get((tenant_id, note_id))

    def is_restricted(self, tenant_id: str, note_id: str) -> bool:
        """Whether the note's caller restricted processing (Art. 18): nothing about it goes."""
        return (tenant_id, note_id) in self.restricted

    def consent(
        self,
        tenant_id: str,
        subject: str,
        purpose: ConsentPurpose,
        channel: ConsentChannel,
        now: datetime,
    ) -> ConsentStatus | None:
        """The subject's current consent for `purpose` on `channel`."""
        records = self.records.get((tenant_id, subject), [])
        return current_status(
            [r for r in records if (r.purpose, r.channel) == (purpose, channel)], now
        )


async def circumstances(
    docs: Sequence[Document],
    *,
    tenants: TenantsRepository,
    notes: NotesRepository,
    registry: ConsentRegistry,
    restricted: Restricted = never_restricted,
) -> Circumstances:
    """Read what the claimed deliveries `docs` need: three queries per tenant in the batch,
    and one per note with a caller (is the caller restricted?)."""
    found = Circumstances()
    if not docs:
        return found
    by_tenant: dict[str, list[Document]] = defaultdict(list)
    for doc in docs:
        by_tenant[doc["tenant_id"]].append(doc)
    for tenant_id, own in by_tenant.items():
        found.tenants[tenant_id] = await tenants.get(tenant_id)
        live = await notes.live_many(tenant_id, sorted({d["note_id"] for d in own}))
        found.notes.update({(tenant_id, note_id): note for note_id, note in live.items()})
        for note_id, note in live.items():
            caller = caller_ids(note.caller)
            if caller and await restricted(tenant_id, caller):
                found.restricted.add((tenant_id, note_id))
        subjects = sorted({d["recipient"] for d in own})
        for record in await registry.of_subjects(tenant_id, subjects):
            found.records.setdefault((tenant_id, record.subject.value), []).append(record)
    return found

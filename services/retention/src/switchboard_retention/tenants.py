"""What the retention service knows of tenants, from `tenant.changed`: when they offboard.

A prospect that never signed is offboarded 90 days after onboarding (R-RET-3), a terminated
client 5 years after the termination (R-RET-4); a sweep then orders every service to erase
what is left of the tenant. Clocks are epoch milliseconds (range-queried; nx-27017 quirk 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, time

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.tenants import ContractStatus, TenantChanged
from switchboard_platform.mongo import Document, MongoDatabase, all_of

from .domain import epoch_ms
from .policies import policy_for

TENANTS = "tenants"
INDEXES: dict[str, Sequence[IndexModel]] = {
    TENANTS: [IndexModel([("status", ASCENDING), ("clock_ms", ASCENDING)], name="offboarding")],
}


class TenantStore:
    """The contract status and retention clock of each tenant."""

    def __init__(self, db: MongoDatabase) -> None:
        self._tenants = db[TENANTS]

    async def apply(self, event: Event[TenantChanged]) -> None:
        """Record the tenant's status; an older event than the one applied changes nothing."""
        profile = event.data
        at = epoch_ms(event.time)
        fields: Document = {"status": str(profile.contract_status), "event_ms": at}
        unset: Document = {}
        if profile.contract_status is ContractStatus.TERMINATED:
            ended = profile.contract_terminated_on or event.time.date()
            fields["clock_ms"] = epoch_ms(datetime.combine(ended, time(), tzinfo=UTC))
        elif profile.contract_status is ContractStatus.ACTIVE:
            unset = {"clock_ms": "", "offboarded": ""}
        update: Document = {"$set": fields, **({"$unset": unset} if unset else {})}
        result = await self._tenants.update_one(
            all_of({"_id": profile.tenant_id}, {"event_ms": {"$lte": at}}), update
        )
        if result.matched_count:
            return
        first = {"_id": profile.tenant_id, **fields, "created_ms": at}
        if profile.contract_status is ContractStatus.PROSPECT:
            first["clock_ms"] = at
        with contextlib.suppress(DuplicateKeyError):  # known, with a newer event: stale
            await self._tenants.insert_one(first)

    async def known(self, tenant_id: str) -> bool:
        """Whether a `tenant.changed` of the tenant was applied; an offboarded tenant stays
        known (its record is only marked `offboarded`)."""
        return await self._tenants.find_one({"_id": tenant_id}, {"_id": 1}) is not None

    async def due(self, as_of: datetime, tenant_id: str | None = None) -> list[str]:
        """Tenants whose account clock ran out by `as_of` and were not offboarded yet."""
        rules = (
            (ContractStatus.PROSPECT, DataCategory.PROSPECT_ONBOARDING),
            (ContractStatus.TERMINATED, DataCategory.CUSTOMER_ACCOUNT),
        )
        found: list[str] = []
        for status, category in rules:
            cutoff = epoch_ms(policy_for(category).period.before(as_of))
            clauses: list[Document] = [
                {"status": str(status)},
                {"clock_ms": {"$lt": cutoff}},
                {"offboarded": {"$exists": False}},
            ]
            if tenant_id is not None:
                clauses.append({"_id": tenant_id})
            found += [doc["_id"] async for doc in self._tenants.find(all_of(*clauses), {"_id": 1})]
        return sorted(found)

    async def offboarded(self, tenant_ids: Sequence[str], sweep_id: str) -> None:
        """Remember that these tenants' erasure was ordered."""
        for tenant_id in tenant_ids:
            await self._tenants.update_one({"_id": tenant_id}, {"$set": {"offboarded": sweep_id}})

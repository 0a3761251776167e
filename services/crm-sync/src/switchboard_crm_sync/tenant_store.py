"""What crm-sync keeps of each tenant from `tenant.changed`: secrecy and contract status.

Only the newest profile counts: an older event redelivered after a newer one changes
nothing (the event time is kept as epoch seconds, a number both servers compare alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.tenants import ContractStatus
from switchboard_platform.mongo import MongoDatabase, all_of

from .domain import TenantProfile

TENANTS = "tenants"

INDEXES: dict[str, Sequence[IndexModel]] = {
    TENANTS: [
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention")
    ]
}


class TenantStore:
    """Tenant profiles by tenant id."""

    def __init__(self, db: MongoDatabase) -> None:
        self._coll = db[TENANTS]

    async def save(self, profile: TenantProfile, *, event_time: datetime, now: datetime) -> None:
        """Keep `profile` unless a newer one is stored already."""
        fields = {
            "secrecy_bound": profile.secrecy_bound,
            "contract_status": str(profile.contract_status),
            "event_ts": event_time.timestamp(),
        }
        try:
            await self._coll.insert_one(
                {
                    "_id": profile.tenant_id,
                    "tenant_id": profile.tenant_id,
                    **fields,
                    "first_seen_at": now,
                    "category": str(DataCategory.CUSTOMER_ACCOUNT),
                    # no clock while the account runs: the tenant's offboarding order
                    # (R-RET-3/4) erases it, as it erases the connectors
                    "retention_from": None,
                }
            )
        except DuplicateKeyError:
            await self._coll.update_one(
                all_of({"_id": profile.tenant_id}, {"event_ts": {"$lte": fields["event_ts"]}}),
                {"$set": fields},
            )

    async def known(self, tenant_id: str) -> bool:
        """Whether crm-sync has seen the tenant's profile (kept until its offboarding order
        erases it)."""
        return await self._coll.find_one({"_id": tenant_id}, {"_id": 1}) is not None

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's latest profile, or None if crm-sync has not seen one."""
        doc = await self._coll.find_one({"_id": tenant_id})
        if doc is None:
            return None
        return TenantProfile(
            tenant_id=tenant_id,
            secrecy_bound=bool(doc["secrecy_bound"]),
            contract_status=ContractStatus(doc["contract_status"]),
        )

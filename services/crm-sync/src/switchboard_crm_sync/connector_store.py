"""The connectors collection: one document per tenant and kind, credentials sealed.

Besides the configuration it holds the connector's health, written by the transfer loop:
`attention` (credentials refused: transfers wait until they change), `paused_until`
(a rate limit or an open circuit, epoch seconds), `failures_in_a_row` (the breaker's count)
and the last success and failure. Every read that leaves this module drops `credentials`
unless it asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts.categories import DataCategory
from switchboard_platform.mongo import Document, MongoDatabase, all_of
from switchboard_platform.tenancy import one_of_tenant, only_tenant, scoped

from .domain import Kind, connector_id

SERVICE = "crm-sync"
CONNECTORS = "connectors"
NO_SECRETS = {"credentials": 0}

INDEXES: dict[str, Sequence[IndexModel]] = {
    CONNECTORS: [
        IndexModel([("tenant_id", ASCENDING), ("kind", ASCENDING)], name="tenant_kind"),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    ]
}


class ConnectorStore:
    """Stores connectors; every tenant query is scoped and guarded."""

    def __init__(self, db: MongoDatabase) -> None:
        self._coll = db[CONNECTORS]

    async def get(
        self, tenant_id: str, kind: Kind, *, with_credentials: bool = False
    ) -> Document | None:
        """The tenant's connector of `kind`, or None."""
        doc = await self._coll.find_one(
            scoped(tenant_id, {"_id": connector_id(tenant_id, kind)}),
            None if with_credentials else NO_SECRETS,
        )
        return one_of_tenant(doc, tenant_id, service=SERVICE, collection=CONNECTORS)

    async def by_id(self, cid: str) -> Document | None:
        """A connector with its sealed credentials (for the transfer loop)."""
        return await self._coll.find_one({"_id": cid})

    async def of_tenant(self, tenant_id: str) -> list[Document]:
        """The tenant's connectors, without credentials."""
        docs = [d async for d in self._coll.find(scoped(tenant_id), NO_SECRETS).sort("kind", 1)]
        return only_tenant(docs, tenant_id, service=SERVICE, collection=CONNECTORS)

    async def create(self, tenant_id: str, kind: Kind, fields: Document, now: datetime) -> bool:
        """Insert a new connector; False if one exists already."""
        doc = {
            "_id": connector_id(tenant_id, kind),
            "tenant_id": tenant_id,
            "kind": str(kind),
            "attention": None,
            "paused_until": 0.0,
            "failures_in_a_row": 0,
            "credentials_version": 1,
            "created_at": now,
            "category": str(DataCategory.CUSTOMER_ACCOUNT),
            # no clock while the account runs: the tenant's offboarding order (R-RET-3/4)
            # erases it; a clock from creation would let a sweep take a live connector
            "retention_from": None,
            **fields,
        }
        try:
            await self._coll.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def update(
        self, tenant_id: str, kind: Kind, fields: Document, *, new_credentials: bool
    ) -> Document | None:
        """Change a connector; new credentials clear its attention, pause and breaker."""
        update: Document = {"$set": fields}
        if new_credentials:
            update["$set"] = {
                **fields,
                "attention": None,
                "paused_until": 0.0,
                "failures_in_a_row": 0,
            }
            update["$inc"] = {"credentials_version": 1}
        doc = await self._coll.find_one_and_update(
            scoped(tenant_id, {"_id": connector_id(tenant_id, kind)}),
            update,
            projection=NO_SECRETS,
            return_document=ReturnDocument.AFTER,
        )
        return one_of_tenant(doc, tenant_id, service=SERVICE, collection=CONNECTORS)

    async def delete(self, tenant_id: str, kind: Kind) -> bool:
        """Remove the connector and its credentials; False if there was none."""
        result = await self._coll.delete_one(
            scoped(tenant_id, {"_id": connector_id(tenant_id, kind)})
        )
        return result.deleted_count == 1

    async def enabled_of_tenant(self, tenant_id: str) -> list[Document]:
        """The tenant's enabled connectors (they get a transfer for each new note)."""
        docs = [d async for d in self._coll.find(scoped(tenant_id, {"enabled": True}), NO_SECRETS)]
        return only_tenant(docs, tenant_id, service=SERVICE, collection=CONNECTORS)

    async def by_ids(
        self, ids: Sequence[str], *, with_credentials: bool = False
    ) -> dict[str, Document]:
        """Connectors by id (the transfer loop's view: health, and what to send with)."""
        if not ids:
            return {}
        cursor = self._coll.find(
            {"_id": {"$in": list(ids)}}, None if with_credentials else NO_SECRETS
        )
        return {d["_id"]: d async for d in cursor}

    async def sealed(self) -> list[Document]:
        """Every connector's sealed credentials and their version (for key rotation)."""
        cursor = self._coll.find({}, {"credentials": 1, "credentials_version": 1})
        return [d async for d in cursor if isinstance(d.get("credentials"), dict)]

    async def reseal(self, cid: str, version: int, sealed: dict[str, str]) -> None:
        """Store credentials sealed with the newest key (if they did not change meanwhile)."""
        await self._coll.update_one(
            all_of({"_id": cid}, {"credentials_version": version}),
            {"$set": {"credentials": sealed}},
        )

    async def record_health(
        self, cid: str, fields: Document, *, inc: Document | None = None, version: int | None = None
    ) -> None:
        """Write what a transfer learnt of the connector (only for `version`'s credentials)."""
        clauses: list[Document] = [{"_id": cid}]
        if version is not None:
            clauses.append({"credentials_version": version})
        update: Document = {"$set": fields}
        if inc:
            update["$inc"] = inc
        await self._coll.update_one(all_of(*clauses), update)

    async def add_failure(self, cid: str) -> int:
        """Count one more failure in a row; the new count."""
        doc = await self._coll.find_one_and_update(
            {"_id": cid},
            {"$inc": {"failures_in_a_row": 1}},
            projection={"failures_in_a_row": 1},
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["failures_in_a_row"]) if doc else 0


def public_fields(doc: Document) -> dict[str, Any]:
    """A connector document without anything secret (defence in depth for answers)."""
    return {k: v for k, v in doc.items() if k != "credentials"}

"""Tenant isolation in the data layer: query shapes that hold on every server, and a guard.

Every tenant-scoped query is built with `scoped()`. Plain conditions are merged into one
flat filter (nx-27017 uses no index under a top-level `$and`); as soon as a clause holds an
`$or` or repeats a field, the tenant condition and the clauses are joined by an explicit
`$and` instead (nx-27017 drops a top-level condition for the later branches of a sibling
`$or` when a datetime is compared; `$and` holds there and means the same on MongoDB).

Every read that returns tenant documents passes them
through `only_tenant()`, which drops, counts and logs any document of another tenant, so a
server or query bug cannot turn into a cross-tenant leak (R-SEC-2).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .metrics import TENANT_GUARD_DROPPED
from .mongo import Document, all_of

log = logging.getLogger(__name__)

TENANT_FIELD = "tenant_id"


def scoped(tenant_id: str, *clauses: Document, field: str = TENANT_FIELD) -> Document:
    """A filter for `tenant_id`'s documents that also satisfy every clause."""
    return all_of({field: tenant_id}, *clauses)


def only_tenant(
    docs: Iterable[Document],
    tenant_id: str,
    *,
    service: str,
    collection: str,
    field: str = TENANT_FIELD,
) -> list[Document]:
    """`docs` without any document that is not `tenant_id`'s; each dropped one is counted."""
    kept: list[Document] = []
    for doc in docs:
        if doc.get(field) == tenant_id:
            kept.append(doc)
            continue
        TENANT_GUARD_DROPPED.labels(service=service, collection=collection).inc()
        log.error(
            "dropped a document of another tenant from a tenant-scoped read",
            extra={"collection": collection, "document_id": str(doc.get("_id"))},
        )
    return kept


def one_of_tenant(
    doc: Document | None, tenant_id: str, *, service: str, collection: str
) -> Document | None:
    """`doc` if it is `tenant_id`'s, else None (counted and logged as by `only_tenant`)."""
    if doc is None:
        return None
    kept = only_tenant([doc], tenant_id, service=service, collection=collection)
    return kept[0] if kept else None


def any_value(value: Any) -> Document:
    """`{"$in": [value]}`: equality that matches array elements on MongoDB and nx-27017."""
    return {"$in": [value]}

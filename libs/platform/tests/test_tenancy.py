"""The tenant guard of the data layer (R-SEC-2): query shape and defence in depth."""

from __future__ import annotations

import logging

import pytest

from switchboard_platform.metrics import TENANT_GUARD_DROPPED
from switchboard_platform.mongo import all_of
from switchboard_platform.tenancy import one_of_tenant, only_tenant, scoped
from switchboard_platform.testing.fakes import FakeDatabase


def _dropped() -> float:
    value: float = TENANT_GUARD_DROPPED.labels(service="unit", collection="notes")._value.get()
    return value


def test_r_sec_2_documents_of_another_tenant_are_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = _dropped()
    docs: list[dict[str, object]] = [
        {"_id": 1, "tenant_id": "a"},
        {"_id": 2, "tenant_id": "b"},
        {"_id": 3},
    ]
    with caplog.at_level(logging.ERROR):
        kept = only_tenant(docs, "a", service="unit", collection="notes")
    assert kept == [{"_id": 1, "tenant_id": "a"}]
    assert _dropped() - before == 2
    assert "another tenant" in caplog.text
    assert "'b'" not in caplog.text
    assert (
        one_of_tenant({"_id": 2, "tenant_id": "b"}, "a", service="unit", collection="notes") is None
    )


def test_scoped_queries_join_an_or_with_and_and_plain_conditions_flat() -> None:
    clause = {"$or": [{"x": 1}, {"y": 2}]}
    assert scoped("a") == {"tenant_id": "a"}
    assert scoped("a", clause, {}) == {"$and": [{"tenant_id": "a"}, clause]}
    assert scoped("a", {"_id": "n1"}, {"deleted_at": {"$exists": False}}) == {
        "tenant_id": "a",
        "_id": "n1",
        "deleted_at": {"$exists": False},
    }
    # a clause that names the tenant field again must not overwrite the tenant condition
    assert scoped("a", {"tenant_id": "b"}) == {"$and": [{"tenant_id": "a"}, {"tenant_id": "b"}]}


async def test_r_sec_2_a_scoped_or_query_never_returns_another_tenants_document() -> None:
    db = FakeDatabase()
    await db.n.insert_many([{"_id": i, "tenant_id": "ab"[i % 2], "v": i} for i in range(6)])
    query = scoped("a", {"$or": [{"v": {"$lt": 3}}, {"v": 5}]})
    found = [d async for d in db.n.find(query)]
    assert {d["tenant_id"] for d in found} == {"a"}


def test_all_of_is_flat_for_distinct_plain_fields_and_and_otherwise() -> None:
    """Flat where it can be (nx-27017 uses no index under `$and`), `$and` where it must."""
    assert all_of({"_id": "t1"}, {"status": "pending"}) == {"_id": "t1", "status": "pending"}
    assert all_of({"a": 1}, {}) == {"a": 1}
    either = {"$or": [{"a": 1}, {"b": 2}]}
    assert all_of({"_id": "t1"}, either) == {"$and": [{"_id": "t1"}, either]}
    assert all_of({"n": {"$gt": 1}}, {"n": {"$lt": 5}}) == {
        "$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 5}}]
    }

"""Use cases that refuse before touching anything: a future sweep in production, a sweep of
an unknown tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from switchboard_contracts import Event, make_event
from switchboard_contracts.retention import RetentionCompleted
from switchboard_contracts.tenants import ContractStatus, Industry, TenantChanged
from switchboard_platform.errors import Unprocessable
from switchboard_platform.testing.fakes import FakeDatabase
from switchboard_retention.dsr_store import DsrStore
from switchboard_retention.holds import HoldStore
from switchboard_retention.receipts import ReceiptStore
from switchboard_retention.service import RetentionService
from switchboard_retention.sweeps import SweepStore
from switchboard_retention.tenants import TenantStore


def _service(*, production: bool, db: FakeDatabase | None = None) -> RetentionService:
    db = db or FakeDatabase()
    return RetentionService(
        sweeps=SweepStore(db),  # type: ignore[arg-type]
        holds=HoldStore(db),  # type: ignore[arg-type]
        receipts=ReceiptStore(db),  # type: ignore[arg-type]
        tenants=TenantStore(db),  # type: ignore[arg-type]
        requests=DsrStore(db),  # type: ignore[arg-type]
        participants=("notes",),
        answer_timeout_s=60,
        production=production,
    )


async def test_a_sweep_as_of_a_future_time_is_refused_in_production() -> None:
    later = datetime.now(UTC) + timedelta(days=61)
    with pytest.raises(Unprocessable) as refused:
        await _service(production=True).start_sweep(requested_by="op", as_of=later)
    assert refused.value.field == "as_of"


def _tenant_changed(tenant_id: str) -> Event[TenantChanged]:
    payload = TenantChanged(
        tenant_id=tenant_id,
        change="created",
        name="Hausverwaltung Lindner",
        industry=Industry.OTHER,
        secrecy_bound=False,
        contract_status=ContractStatus.ACTIVE,
    )
    return make_event(payload, tenant_id=tenant_id, source="/switchboard/intake")


async def test_a_sweep_in_test_orders_every_category_and_waits_for_the_participants() -> None:
    service = _service(production=False)
    await service.tenant_changed(_tenant_changed("t1"))
    later = datetime.now(UTC) + timedelta(days=61)
    sweep_id = await service.start_sweep(requested_by="op", as_of=later, tenant_id="t1")
    sweep = await service.sweep(sweep_id)
    assert sweep["status"] == "running"
    assert len(sweep["orders"]) == 5
    assert {m["service"] for m in sweep["missing"]} == {"notes"}


async def test_a_sweep_limited_to_a_tenant_never_announced_is_refused_and_issues_nothing() -> None:
    db = FakeDatabase()
    with pytest.raises(Unprocessable) as refused:
        await _service(production=False, db=db).start_sweep(requested_by="op", tenant_id="t-typo")
    assert refused.value.field == "body.tenant_id"
    assert await db["sweeps"].count_documents({}) == 0


async def test_r_ret_6_only_the_replica_that_issues_a_sweep_erases_its_own_kept_answers() -> None:
    """Replicas race for a scheduled slot; the one whose sweep was not recorded must not
    erase anything, or that erasure would be proven nowhere."""
    db = FakeDatabase()
    first, second = _service(production=False, db=db), _service(production=False, db=db)
    long_ago = datetime.now(UTC) - timedelta(days=90)
    fragments = db["dsr_fragments"]
    for i in range(3):
        await fragments.insert_one(
            {"_id": f"f{i}", "request_id": "r", "category": "call_data", "retention_from": long_ago}
        )
    sweep_id = await first.start_sweep(requested_by="system:schedule", sweep_id="scheduled-1")
    assert (await first.sweep(sweep_id))["own_erased"] == 3
    [own] = await ReceiptStore(db).page(request_id=f"{sweep_id}:own")  # type: ignore[arg-type]
    assert own["erased"][0]["count"] == 3

    await fragments.insert_one(
        {"_id": "late", "request_id": "r", "category": "call_data", "retention_from": long_ago}
    )
    assert await second.start_sweep(requested_by="system:schedule", sweep_id=sweep_id) == sweep_id
    assert await fragments.count_documents({}) == 1  # left for the next sweep, which proves it


async def test_r_ret_4_an_offboarded_tenants_kept_answers_go_with_it() -> None:
    db = FakeDatabase()
    service = _service(production=False, db=db)
    six_years_ago = datetime.now(UTC) - timedelta(days=6 * 365)
    await db["tenants"].insert_one(
        {"_id": "gone", "status": "terminated", "clock_ms": int(six_years_ago.timestamp() * 1000)}
    )
    recent = datetime.now(UTC) - timedelta(days=1)
    for tenant in ("gone", "gone", "staying"):
        await db["dsr_fragments"].insert_one(
            {
                "request_id": "r",
                "tenant_id": tenant,
                "category": "call_data",
                "retention_from": recent,
            }
        )
    sweep_id = await service.start_sweep(requested_by="op")
    assert (await service.sweep(sweep_id))["own_erased"] == 2
    assert [d["tenant_id"] async for d in db["dsr_fragments"].find({})] == ["staying"]


async def test_receipt_metrics_are_labelled_by_configured_participants_only() -> None:
    """The label came from the event: any producer could add series, NUL bytes included."""
    service = _service(production=False)

    def receipts(label: str) -> float:
        value = REGISTRY.get_sample_value(
            "switchboard_retention_receipts_total", {"service": label}
        )
        return value or 0.0

    before = {label: receipts(label) for label in ("notes", "other", "a\x00b")}
    for name in ("notes", "a\x00b"):
        receipt = RetentionCompleted(
            request_id=f"r-{name!r}", service=name, completed_at=datetime.now(UTC)
        )
        await service.record_receipt(
            make_event(receipt, tenant_id="t1", source="/switchboard/notes")
        )
    assert receipts("notes") == before["notes"] + 1
    assert receipts("other") == before["other"] + 1
    assert receipts("a\x00b") == before["a\x00b"] == 0

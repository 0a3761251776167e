"""When a tenant is offboarded (R-RET-3, R-RET-4), from the `tenant.changed` events the
retention service applies, on the session's database: the bad cases beside the flows."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from switchboard_contracts import Event, make_event
from switchboard_contracts.samples import sample_payload
from switchboard_contracts.tenants import ContractStatus, TenantChanged
from switchboard_retention.tenants import TenantStore

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _changed(
    tenant: str, status: ContractStatus, at: datetime, **fields: Any
) -> Event[TenantChanged]:
    profile = sample_payload(TenantChanged).model_copy(
        update={"tenant_id": tenant, "contract_status": status, **fields}
    )
    event = make_event(profile, tenant_id=tenant, source="/switchboard/intake")
    return event.model_copy(update={"time": at})


async def _store(mongo: AsyncMongoClient[dict[str, Any]]) -> TenantStore:
    return TenantStore(mongo[f"retention_clocks_{uuid.uuid4().hex[:8]}"])


async def test_r_ret_3_a_prospect_who_signs_before_day_90_is_not_offboarded(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    store = await _store(mongo)
    signed, unsigned = "t-signed", "t-unsigned"
    for tenant in (signed, unsigned):
        await store.apply(_changed(tenant, ContractStatus.PROSPECT, START))
    await store.apply(_changed(signed, ContractStatus.ACTIVE, START + timedelta(days=80)))
    assert await store.due(START + timedelta(days=89)) == []
    assert await store.due(START + timedelta(days=91)) == [unsigned]
    assert await store.due(START + timedelta(days=365 * 10)) == [unsigned]


async def test_r_ret_4_a_client_is_offboarded_5_years_after_termination_not_before_nor_if_back(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    store = await _store(mongo)
    ended, back, running = "t-ended", "t-back", "t-running"
    for tenant in (ended, back, running):
        await store.apply(_changed(tenant, ContractStatus.ACTIVE, START))
    terminated_on = date(2027, 3, 31)
    for tenant in (ended, back):
        await store.apply(
            _changed(
                tenant,
                ContractStatus.TERMINATED,
                START + timedelta(days=400),
                contract_terminated_on=terminated_on,
            )
        )
    # the client of `back` signs again: its account is live, its clock gone
    await store.apply(_changed(back, ContractStatus.ACTIVE, START + timedelta(days=800)))
    end = datetime(2027, 3, 31, tzinfo=UTC)
    assert await store.due(end + timedelta(days=4 * 365)) == []
    assert await store.due(end + timedelta(days=5 * 366)) == [ended]
    # an event older than the one applied (a redelivery, another partition) changes nothing
    await store.apply(
        _changed(back, ContractStatus.TERMINATED, START + timedelta(days=500)),
    )
    assert await store.due(end + timedelta(days=20 * 366)) == [ended]

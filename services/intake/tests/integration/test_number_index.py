"""The unique index alone keeps a forwarding number with one tenant, whatever checks ran before.

Two racing requests can both pass the friendly check that runs before a write; then only
the index decides. These tests write through the repository directly, skipping that check.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_contracts.tenants import Industry
from switchboard_intake import tenants
from switchboard_intake.repository import INDEXES, IntakeRepository, NumberTaken
from switchboard_intake.tenants import Tenant, TenantProfile
from switchboard_platform.mongo import ensure_indexes

NOW = datetime(2025, 5, 20, 10, 0, tzinfo=UTC)
SHARED = "+492411234567"


def tenant(tenant_id: str, *numbers: str) -> Tenant:
    profile = TenantProfile(name=tenant_id, industry=Industry.OTHER, forwarding_numbers=numbers)
    return Tenant(tenant_id, profile, created_at=NOW, updated_at=NOW)


async def store(repository: IntakeRepository, stored: Tenant) -> None:
    event = tenants.changed_event(stored.tenant_id, stored.profile, "created")
    await repository.insert_tenant(stored, [event])


@pytest.fixture
async def repository(db) -> IntakeRepository:
    await ensure_indexes(db, INDEXES)
    return IntakeRepository(db)


async def test_index_refuses_the_same_number_list_twice(repository):
    await store(repository, tenant("a", SHARED))

    with pytest.raises(NumberTaken) as caught:
        await store(repository, tenant("b", SHARED))

    assert caught.value.numbers == (SHARED,)


async def test_index_refuses_a_number_inside_an_overlapping_list(repository, nx_deviation):
    nx_deviation("a unique index on an array field compares whole arrays, not each element")
    await store(repository, tenant("a", "+492417654321", SHARED))

    with pytest.raises(NumberTaken) as caught:
        await store(repository, tenant("b", SHARED, "+492211234567"))

    assert caught.value.numbers == (SHARED,)


async def test_index_refuses_an_update_that_takes_a_number(repository, nx_deviation):
    nx_deviation("a unique index on an array field compares whole arrays, not each element")
    await store(repository, tenant("a", "+492417654321", SHARED))
    await store(repository, tenant("b", "+492211234567"))
    taking = tenant("b", "+492211234567", SHARED)

    event = tenants.changed_event("b", taking.profile, "updated")

    with pytest.raises(NumberTaken):
        await repository.update_tenant(taking, expected_version=1, events=[event])


async def test_index_lets_several_tenants_have_no_numbers(repository):
    await store(repository, tenant("a"))
    await store(repository, tenant("b"))

    assert await repository.tenant_owning(SHARED) is None

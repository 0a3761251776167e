"""Use cases against a fake repository: what is written, and the optimistic-update loop."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_contracts.tenants import Industry
from switchboard_intake.repository import NumberTaken
from switchboard_intake.service import MAX_UPDATE_ATTEMPTS, IntakeService
from switchboard_intake.tenants import Tenant, TenantProfile
from switchboard_platform.errors import Conflict, NotFound

NOW = datetime(2025, 5, 20, 10, 0, tzinfo=UTC)


class FakeRepository:
    """Keeps tenants in a dict; `lose_races` makes that many updates lose to a concurrent one."""

    def __init__(self, lose_races: int = 0) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.events: list[object] = []
        self.lose_races = lose_races

    async def insert_tenant(self, tenant, events):
        self.tenants[tenant.tenant_id] = tenant
        self.events.extend(events)

    async def update_tenant(self, tenant, expected_version, events):
        if self.lose_races:
            self.lose_races -= 1
            return False
        assert self.tenants[tenant.tenant_id].version == expected_version
        self.tenants[tenant.tenant_id] = tenant
        self.events.extend(events)
        return True

    async def find_tenant(self, tenant_id):
        return self.tenants.get(tenant_id)

    async def numbers_owned_elsewhere(self, numbers, tenant_id):
        owned = {
            n
            for t in self.tenants.values()
            if t.tenant_id != tenant_id
            for n in t.profile.forwarding_numbers
        }
        return [n for n in numbers if n in owned]


def service(repository: FakeRepository, woken: list[int]) -> IntakeService:
    return IntakeService(
        repository,  # type: ignore[arg-type]
        events_written=lambda *collections: woken.append(1),
        recording_notice_version="notice-v1",
        clock=lambda: NOW,
    )


PROFILE = TenantProfile(name="Kanzlei Meyer", industry=Industry.LAW)


async def test_creating_a_tenant_writes_it_with_its_event_and_wakes_the_relay():
    repository, woken = FakeRepository(), []

    tenant = await service(repository, woken).create_tenant(PROFILE)

    assert repository.tenants[tenant.tenant_id].created_at == NOW
    assert [e.data.change for e in repository.events] == ["created"]
    assert woken == [1]


async def test_a_taken_number_is_refused_before_anything_is_written():
    repository, woken = FakeRepository(), []
    intake = service(repository, woken)
    await intake.create_tenant(
        PROFILE.model_copy(update={"forwarding_numbers": ("+492411234567",)})
    )

    with pytest.raises(NumberTaken) as caught:
        await intake.create_tenant(
            PROFILE.model_copy(update={"forwarding_numbers": ("+492411234567",)})
        )

    assert caught.value.numbers == ("+492411234567",)
    assert len(repository.tenants) == 1
    assert woken == [1]


async def test_an_update_that_loses_a_race_is_retried_on_the_fresh_profile():
    repository, woken = FakeRepository(), []
    intake = service(repository, woken)
    created = await intake.create_tenant(PROFILE)
    repository.lose_races = 2

    changed = await intake.change_tenant(created.tenant_id, {"notes": "neu"})

    assert changed.profile.notes == "neu"
    assert changed.version == 2
    assert [e.data.change for e in repository.events] == ["created", "updated"]


async def test_an_update_that_keeps_losing_is_a_conflict():
    repository, woken = FakeRepository(), []
    intake = service(repository, woken)
    created = await intake.create_tenant(PROFILE)
    repository.lose_races = MAX_UPDATE_ATTEMPTS

    with pytest.raises(Conflict):
        await intake.change_tenant(created.tenant_id, {"notes": "neu"})

    assert [e.data.change for e in repository.events] == ["created"]


async def test_changing_an_unknown_tenant_is_not_found():
    with pytest.raises(NotFound):
        await service(FakeRepository(), []).change_tenant("nobody", {"notes": "x"})

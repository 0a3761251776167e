"""A forwarding number belongs to one tenant only, even when requests race (R-ONB-1, R-CALL-2)."""

from __future__ import annotations

import asyncio


async def test_duplicate_forwarding_number_is_409_naming_it(intake, operator, create_tenant, db):
    await create_tenant(forwarding_numbers=["+49 241 1234567"])

    second = await intake.post(
        "/v1/tenants",
        json={
            "name": "Steuerbüro Krause",
            "industry": "tax",
            "forwarding_numbers": ["0241 1234567"],
        },
        headers=operator,
    )

    assert second.status_code == 409
    [detail] = second.json()["detail"]
    assert detail["loc"] == ["body", "forwarding_numbers"]
    assert "+492411234567" in detail["msg"]
    assert await db.tenants.count_documents({}) == 1


async def test_patch_cannot_take_another_tenants_number(intake, operator, create_tenant):
    await create_tenant(forwarding_numbers=["0241 1234567"])
    other = await create_tenant(name="Praxis Schulz", forwarding_numbers=["0221 1234567"])

    taken = await intake.patch(
        f"/v1/tenants/{other}",
        json={"forwarding_numbers": ["0221 1234567", "0241 1234567"]},
        headers=operator,
    )

    assert taken.status_code == 409
    assert "+492411234567" in taken.json()["detail"][0]["msg"]
    unchanged = await intake.get(f"/v1/tenants/{other}", headers=operator)
    assert unchanged.json()["forwarding_numbers"] == ["+492211234567"]


async def test_r_call_2_a_number_moved_by_patch_routes_calls_to_its_new_owner(
    intake, operator, agent, create_tenant, call_body
):
    first = await create_tenant(forwarding_numbers=["0241 1234567", "0241 7654321"])
    second = await create_tenant(name="Praxis Schulz")

    released = await intake.patch(
        f"/v1/tenants/{first}", json={"forwarding_numbers": ["0241 7654321"]}, headers=operator
    )
    taken = await intake.patch(
        f"/v1/tenants/{second}", json={"forwarding_numbers": ["0241 1234567"]}, headers=operator
    )
    call = await intake.post(
        "/v1/calls", json=call_body(dialed_number="0241 1234567"), headers=agent
    )

    assert (released.status_code, taken.status_code) == (200, 200)
    assert call.json()["tenant_id"] == second


async def test_a_tenant_may_drop_all_its_numbers_and_several_tenants_have_none(
    intake, operator, create_tenant
):
    first = await create_tenant(forwarding_numbers=["0241 1234567"])
    await create_tenant(name="Ohne Nummer")

    emptied = await intake.patch(
        f"/v1/tenants/{first}", json={"forwarding_numbers": []}, headers=operator
    )
    third = await intake.post(
        "/v1/tenants", json={"name": "Auch ohne", "industry": "other"}, headers=operator
    )

    assert (emptied.status_code, third.status_code) == (200, 201)
    assert emptied.json()["forwarding_numbers"] == []


async def test_concurrent_onboardings_of_one_number_let_exactly_one_win(intake, operator, db):
    bodies = [
        {"name": f"Tenant {i}", "industry": "other", "forwarding_numbers": ["0241 1234567"]}
        for i in range(5)
    ]

    replies = await asyncio.gather(
        *(intake.post("/v1/tenants", json=body, headers=operator) for body in bodies)
    )

    assert sorted(r.status_code for r in replies) == [201, 409, 409, 409, 409]
    assert all("+492411234567" in r.text for r in replies if r.status_code == 409)
    assert await db.tenants.count_documents({}) == 1

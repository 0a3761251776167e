"""Bad input is a 422 naming the field at fault; nothing is stored and nothing published."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from switchboard_contracts.topics import CALL_RECEIVED, TENANT_CHANGED

TENANT_CASES = {
    "invalid phone": ({"forwarding_numbers": ["12345"]}, ["forwarding_numbers", 0]),
    "missing name": ({"name": None}, ["name"]),
    "oversized name": ({"name": "x" * 201}, ["name"]),
    "oversized notes": ({"notes": "x" * 5001}, ["notes"]),
    "unknown industry": ({"industry": "bakery"}, ["industry"]),
    "list of the wrong type": ({"forwarding_numbers": "0241 1234567"}, ["forwarding_numbers"]),
    "too many numbers": ({"forwarding_numbers": ["0241 1234567"] * 51}, ["forwarding_numbers"]),
    "sms recipient without a phone number": (
        {"recipients": [{"channel": "sms", "address": "weber@meyer.de"}]},
        ["recipients", 0, "address"],
    ),
    "email recipient without an address": (
        {"recipients": [{"channel": "email", "address": "0241 1234567"}]},
        ["recipients", 0, "address"],
    ),
    "contact with an invalid phone": (
        {"contact_persons": [{"name": "Dr. Weber", "phone": "0000"}]},
        ["contact_persons", 0, "phone"],
    ),
    "calendar link that is no URL": ({"calendar_links": ["calendar"]}, ["calendar_links", 0]),
    "call hours ending before they start": (
        {"call_hours": [{"weekday": 1, "start": "17:00", "end": "08:00"}]},
        ["call_hours", 0, "end"],
    ),
    "termination date of a running contract": (
        {"contract_status": "active", "contract_terminated_on": "2025-01-31"},
        ["contract_terminated_on"],
    ),
    # a clock starting in year 9999 would never run out (R-RET-4)
    "termination date beyond 2200": (
        {"contract_status": "terminated", "contract_terminated_on": "9999-12-31"},
        ["contract_terminated_on"],
    ),
    "signing date before 1900": ({"contract_signed_on": "1800-01-01"}, ["contract_signed_on"]),
    "misspelt field": ({"forwarding_number": ["0241 1234567"]}, ["forwarding_number"]),
}

CALL_CASES = {
    "invalid caller phone": ({"caller": {"name": "Erika", "phone": "abc"}}, ["caller", "phone"]),
    "invalid caller email": (
        {"caller": {"name": "Erika", "phone": "0170 1234567", "email": "erika"}},
        ["caller", "email"],
    ),
    "missing caller": ({"caller": None}, ["caller"]),
    "missing concern": ({"concern": None}, ["concern"]),
    "blank concern": ({"concern": "   "}, ["concern"]),
    "oversized concern": ({"concern": "x" * 5001}, ["concern"]),
    "oversized contact person": ({"contact_person": "x" * 201}, ["contact_person"]),
    "duration of the wrong type": ({"duration_seconds": "long"}, ["duration_seconds"]),
    "negative duration": ({"duration_seconds": -1}, ["duration_seconds"]),
    "naive start time": ({"started_at": "2025-03-04T10:15:00"}, ["started_at"]),
    "start time that is no time": ({"started_at": "yesterday"}, ["started_at"]),
    "invalid forwarding number": ({"forwarding_from": "1"}, ["forwarding_from"]),
    "forwarded_from not a phone": ({"forwarded_from": "+1"}, ["forwarded_from"]),
    "consent that is no boolean": ({"recording": {"consent": "yes"}}, ["recording", "consent"]),
    "recording url without consent (R-REC-1)": (
        {"recording": {"consent": False, "url": "https://rec.example.de/1"}},
        ["recording", "url"],
    ),
}


def _without_nones(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(("change", "loc"), TENANT_CASES.values(), ids=TENANT_CASES.keys())
async def test_r_onb_1_bad_tenant_is_422_naming_the_field(
    intake, operator, events, db, change, loc
):
    marker = f"Kanzlei {uuid.uuid4().hex}"
    body = _without_nones({"name": marker, "industry": "law", **change})

    reply = await intake.post("/v1/tenants", json=body, headers=operator)

    assert reply.status_code == 422, reply.text
    assert ["body", *loc] in [d["loc"] for d in reply.json()["detail"]]
    assert await db.tenants.count_documents({}) == 0
    barrier = await intake.post(
        "/v1/tenants", json={"name": "B", "industry": "tax"}, headers=operator
    )
    await events.first(TENANT_CHANGED, barrier.json()["id"])
    await events.settle(0.3)
    assert not [r for r in events.records if marker.encode() in r.value]


@pytest.mark.parametrize(("change", "loc"), TENANT_CASES.values(), ids=TENANT_CASES.keys())
async def test_r_onb_1_bad_tenant_change_is_422_and_changes_nothing(
    intake, operator, events, create_tenant, change, loc
):
    tenant_id = await create_tenant(forwarding_numbers=["0241 7654321"])
    before = (await intake.get(f"/v1/tenants/{tenant_id}", headers=operator)).json()

    reply = await intake.patch(f"/v1/tenants/{tenant_id}", json=change, headers=operator)

    assert reply.status_code == 422, reply.text
    assert ["body", *loc] in [d["loc"] for d in reply.json()["detail"]]
    assert (await intake.get(f"/v1/tenants/{tenant_id}", headers=operator)).json() == before
    await intake.patch(f"/v1/tenants/{tenant_id}", json={"notes": "barrier"}, headers=operator)
    await events.first(TENANT_CHANGED, tenant_id, lambda r: b"barrier" in r.value)
    changes = [json.loads(r.value)["change"] for r in events.of(TENANT_CHANGED, tenant_id)]
    assert changes == ["created", "updated"]


@pytest.mark.parametrize(("change", "loc"), CALL_CASES.values(), ids=CALL_CASES.keys())
async def test_r_call_1_bad_call_is_422_naming_the_field(
    intake, agent, events, db, create_tenant, call_body, change, loc
):
    tenant_id = await create_tenant()
    body = _without_nones(call_body(tenant_id=tenant_id, **change))

    reply = await intake.post("/v1/calls", json=body, headers=agent)

    assert reply.status_code == 422, reply.text
    assert ["body", *loc] in [d["loc"] for d in reply.json()["detail"]]
    assert await db.calls.count_documents({}) == 0
    barrier = await intake.post("/v1/calls", json=call_body(tenant_id=tenant_id), headers=agent)
    await events.first(CALL_RECEIVED, tenant_id)
    await events.settle(0.3)
    published = [json.loads(r.value)["call_id"] for r in events.of(CALL_RECEIVED, tenant_id)]
    assert published == [barrier.json()["id"]]


async def test_oversized_request_is_413_and_stores_nothing(intake, operator, db):
    body = {"name": "Kanzlei Meyer", "industry": "law", "notes": "x" * 70_000}

    reply = await intake.post("/v1/tenants", json=body, headers=operator)

    assert reply.status_code == 413
    assert await db.tenants.count_documents({}) == 0


async def test_body_that_is_no_json_is_422(intake, operator, db):
    reply = await intake.post(
        "/v1/tenants",
        content=b"{name: Kanzlei",
        headers={**operator, "content-type": "application/json"},
    )

    assert reply.status_code == 422
    assert await db.tenants.count_documents({}) == 0

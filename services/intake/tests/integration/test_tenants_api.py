"""Tenant onboarding over the real broker and database: create, read, change, events (R-ONB-1)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from switchboard_contracts import decode
from switchboard_contracts.tenants import TenantChanged
from switchboard_contracts.topics import TENANT_CHANGED

QUESTIONNAIRE = {
    "name": "Kanzlei Meyer & Partner",
    "industry": "law",
    "forwarding_numbers": ["0241 1234567", "+49 (152) 11014450"],
    "call_hours": [{"weekday": 1, "start": "08:00", "end": "17:00"}],
    "break_hours": [{"weekday": 1, "start": "12:00", "end": "13:00"}],
    "calendar_links": ["https://cal.example.de/meyer"],
    "contact_persons": [
        {
            "name": "Dr. Weber",
            "position": "Partner",
            "phone": "0241 7654321",
            "email": "weber@meyer.de",
        }
    ],
    "recipients": [
        {"channel": "email", "address": "Kanzlei@Meyer.DE", "contact_person": "Dr. Weber"},
        {"channel": "sms", "address": "0170 1234567"},
    ],
    "notes": "Mandanten bitte siezen.",
}


async def test_r_onb_1_operator_onboards_a_tenant_and_reads_it_back(intake, operator):
    created = await intake.post("/v1/tenants", json=QUESTIONNAIRE, headers=operator)
    assert created.status_code == 201
    tenant_id = created.json()["id"]

    read = await intake.get(f"/v1/tenants/{tenant_id}", headers=operator)

    assert read.status_code == 200
    tenant = read.json()
    assert tenant["id"] == tenant_id
    assert tenant["forwarding_numbers"] == ["+492411234567", "+4915211014450"]
    assert tenant["contact_persons"][0]["phone"] == "+492417654321"
    assert tenant["recipients"] == [
        {"channel": "email", "address": "Kanzlei@meyer.de", "contact_person": "Dr. Weber"},
        {"channel": "sms", "address": "+491701234567", "contact_person": None},
    ]
    assert tenant["call_hours"] == QUESTIONNAIRE["call_hours"]
    assert tenant["calendar_links"] == QUESTIONNAIRE["calendar_links"]
    assert tenant["notes"] == QUESTIONNAIRE["notes"]
    assert tenant["contract_status"] == "prospect"
    assert tenant["secrecy_bound"] is True


async def test_r_onb_1_onboarding_publishes_tenant_changed_as_a_cloudevent(
    intake, operator, events
):
    created = await intake.post("/v1/tenants", json=QUESTIONNAIRE, headers=operator)
    tenant_id = created.json()["id"]

    record = await events.first(TENANT_CHANGED, tenant_id)

    headers = {k: v.decode() for k, v in record.headers}
    assert record.key == tenant_id.encode()
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "org.switchboard.tenant.changed.v1"
    assert headers["ce_source"] == "/switchboard/intake"
    assert headers["ce_tenantid"] == tenant_id
    assert headers["ce_id"]
    assert headers["ce_time"]
    assert headers["content-type"] == "application/json"
    assert "traceparent" in headers
    payload = decode(record.topic, record.value, record.headers).data
    assert isinstance(payload, TenantChanged)
    assert payload.change == "created"
    assert payload.tenant_id == tenant_id
    assert payload.secrecy_bound is True
    assert payload.forwarding_numbers == ("+492411234567", "+4915211014450")
    assert payload.recipients[1].address == "+491701234567"
    assert payload.notes == QUESTIONNAIRE["notes"]


async def test_patch_changes_only_given_fields_and_publishes_the_whole_profile(
    intake, operator, events, create_tenant
):
    tenant_id = await create_tenant(**QUESTIONNAIRE)

    patched = await intake.patch(
        f"/v1/tenants/{tenant_id}",
        json={"contract_status": "active", "notes": None, "break_hours": []},
        headers=operator,
    )

    assert patched.status_code == 200
    tenant = (await intake.get(f"/v1/tenants/{tenant_id}", headers=operator)).json()
    assert tenant == patched.json()
    assert tenant["name"] == QUESTIONNAIRE["name"]
    assert tenant["contract_status"] == "active"
    assert tenant["contract_signed_on"] == date.today().isoformat()
    assert tenant["notes"] is None
    assert tenant["break_hours"] == []
    assert tenant["forwarding_numbers"] == ["+492411234567", "+4915211014450"]
    record = await events.first(TENANT_CHANGED, tenant_id, lambda r: b'"updated"' in r.value)
    payload = json.loads(record.value)
    assert payload["name"] == QUESTIONNAIRE["name"]
    assert payload["contract_status"] == "active"
    assert payload["forwarding_numbers"] == ["+492411234567", "+4915211014450"]


async def test_patch_that_changes_nothing_publishes_nothing(
    intake, operator, events, create_tenant
):
    tenant_id = await create_tenant(name="Praxis Dr. Schulz", industry="medicine")

    same = await intake.patch(
        f"/v1/tenants/{tenant_id}", json={"name": "Praxis Dr. Schulz"}, headers=operator
    )
    await intake.patch(f"/v1/tenants/{tenant_id}", json={"notes": "barrier"}, headers=operator)

    assert same.status_code == 200
    await events.first(TENANT_CHANGED, tenant_id, lambda r: b"barrier" in r.value)
    changes = [json.loads(r.value)["change"] for r in events.of(TENANT_CHANGED, tenant_id)]
    assert changes == ["created", "updated"]


async def test_prospect_is_stored_as_onboarding_data_with_its_retention_clock(create_tenant, db):
    tenant_id = await create_tenant()

    stored = await db.tenants.find_one({"_id": tenant_id})

    assert stored["tenant_id"] == tenant_id
    assert stored["category"] == "prospect_onboarding"
    assert stored["retention_from"] == stored["created_at"]


async def test_terminated_tenant_is_an_account_whose_clock_starts_at_termination(
    intake, operator, create_tenant, db
):
    tenant_id = await create_tenant(contract_status="active", contract_signed_on="2024-01-15")

    patched = await intake.patch(
        f"/v1/tenants/{tenant_id}", json={"contract_status": "terminated"}, headers=operator
    )

    assert patched.json()["contract_terminated_on"] == date.today().isoformat()
    stored = await db.tenants.find_one({"_id": tenant_id})
    assert stored["category"] == "customer_account"
    assert str(stored["retention_from"])[:10] == date.today().isoformat()


async def test_changed_retention_clock_is_stored_as_a_date(
    intake, operator, create_tenant, db, nx_deviation
):
    nx_deviation("a top-level `$set` datetime is stored as a naive ISO string")
    tenant_id = await create_tenant(contract_status="active")

    await intake.patch(
        f"/v1/tenants/{tenant_id}",
        json={"contract_status": "terminated", "contract_terminated_on": "2025-06-30"},
        headers=operator,
    )

    stored = await db.tenants.find_one({"_id": tenant_id})
    assert stored["retention_from"] == datetime(2025, 6, 30, tzinfo=UTC)


async def test_reactivating_a_terminated_contract_clears_its_termination_date(
    intake, operator, create_tenant
):
    tenant_id = await create_tenant(
        contract_status="terminated", contract_terminated_on="2025-01-31"
    )

    patched = await intake.patch(
        f"/v1/tenants/{tenant_id}", json={"contract_status": "active"}, headers=operator
    )

    assert patched.status_code == 200
    assert patched.json()["contract_terminated_on"] is None


async def test_unknown_tenant_is_404(intake, operator):
    missing = "0123456789abcdef01234567"

    read = await intake.get(f"/v1/tenants/{missing}", headers=operator)
    patched = await intake.patch(f"/v1/tenants/{missing}", json={"notes": "x"}, headers=operator)

    assert (read.status_code, patched.status_code) == (404, 404)


async def test_a_tenant_id_in_another_case_is_no_tenant_on_every_server(
    intake, operator, agent, call_body
):
    """Ids are compared exactly, as MongoDB does (nx-27017 would match a 24-hex `_id` in
    any case): an upper-cased id neither reads the tenant nor takes a call for it."""
    created = await intake.post(
        "/v1/tenants",
        json={"name": "Fall", "industry": "other", "contract_status": "active"},
        headers=operator,
    )
    shouted = created.json()["id"].upper()
    assert (await intake.get(f"/v1/tenants/{shouted}", headers=operator)).status_code == 404
    body = call_body(tenant_id=shouted)
    body.pop("dialed_number", None)
    refused = await intake.post("/v1/calls", json=body, headers=agent)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "tenant_id"]

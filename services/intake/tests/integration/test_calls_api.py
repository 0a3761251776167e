"""Call capture over the real broker and database (R-CALL-1, R-CALL-2, R-REC-1)."""

from __future__ import annotations

import json
from datetime import datetime

from switchboard_contracts import decode
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.consent import ConsentChanged
from switchboard_contracts.topics import CALL_RECEIVED, CONSENT_CHANGED

RECORDING = {"consent": True, "url": "https://recordings.example.de/c/42.ogg"}


async def test_r_call_1_agent_captures_a_call_and_call_received_carries_it(
    intake, agent, create_tenant, call_body, events, db
):
    tenant_id = await create_tenant()
    body = call_body(tenant_id=tenant_id, forwarded_from="0241 7654321")

    reply = await intake.post("/v1/calls", json=body, headers=agent)

    assert reply.status_code == 201
    accepted = reply.json()
    assert accepted["tenant_id"] == tenant_id
    record = await events.first(CALL_RECEIVED, tenant_id)
    headers = {k: v.decode() for k, v in record.headers}
    assert record.key == tenant_id.encode()
    assert headers["ce_type"] == "org.switchboard.call.received.v1"
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_tenantid"] == tenant_id
    assert headers["ce_subject"] == accepted["id"]
    call = decode(record.topic, record.value, record.headers).data
    assert isinstance(call, CallReceived)
    assert call.call_id == accepted["id"]
    assert call.agent_id == "agent-7"
    assert call.caller.name == "Erika Mustermann"
    assert call.caller.phone == "+491701234567"
    assert call.concern == body["concern"]
    assert call.contact_person == "Dr. Weber"
    assert call.started_at == datetime.fromisoformat(body["started_at"])
    assert call.duration_seconds == 95
    assert call.forwarded_from == "+492417654321"
    assert call.received_at == datetime.fromisoformat(accepted["received_at"])


async def test_stored_call_carries_tenant_category_and_retention_clock(
    intake, agent, create_tenant, call_body, db
):
    tenant_id = await create_tenant()

    reply = await intake.post("/v1/calls", json=call_body(tenant_id=tenant_id), headers=agent)

    stored = await db.calls.find_one({"_id": reply.json()["id"]})
    assert stored["tenant_id"] == tenant_id
    assert stored["category"] == "call_data"
    assert stored["retention_from"] == datetime.fromisoformat("2025-03-04T10:15:00+01:00")


async def test_r_call_2_call_is_attributed_to_the_owner_of_the_dialed_number(
    intake, agent, create_tenant, call_body, events
):
    await create_tenant(name="Praxis Schulz", forwarding_numbers=["0221 1234567"])
    owner = await create_tenant(forwarding_numbers=["+49 241 1234567"])

    reply = await intake.post(
        "/v1/calls", json=call_body(dialed_number="0241 1234567"), headers=agent
    )

    assert reply.status_code == 201
    assert reply.json()["tenant_id"] == owner
    record = await events.first(CALL_RECEIVED, owner)
    assert json.loads(record.value)["dialed_number"] == "+492411234567"


async def test_r_call_2_unknown_dialed_number_is_422_naming_it(intake, agent, call_body, db):
    reply = await intake.post(
        "/v1/calls", json=call_body(dialed_number="0241 1234567"), headers=agent
    )

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "dialed_number"]
    assert await db.calls.count_documents({}) == 0


async def test_r_call_2_dialed_number_of_another_tenant_than_named_is_422(
    intake, agent, create_tenant, call_body, db
):
    await create_tenant(forwarding_numbers=["0241 1234567"])
    other = await create_tenant(name="Praxis Schulz")

    reply = await intake.post(
        "/v1/calls",
        json=call_body(tenant_id=other, dialed_number="0241 1234567"),
        headers=agent,
    )

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "tenant_id"]
    assert await db.calls.count_documents({}) == 0


async def test_unknown_tenant_id_is_422_naming_it(intake, agent, call_body, db):
    reply = await intake.post(
        "/v1/calls", json=call_body(tenant_id="0123456789abcdef01234567"), headers=agent
    )

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "tenant_id"]
    assert await db.calls.count_documents({}) == 0


async def test_an_e_mail_the_events_cannot_carry_is_422_naming_it(
    intake, agent, create_tenant, call_body, db
):
    """SMTP allows 254 characters, the events 200: a longer address was a 500 at capture."""
    tenant_id = await create_tenant()
    caller = {"name": "Erika Mustermann", "phone": "0170 1234567", "email": "a" * 195 + "@acme.de"}
    reply = await intake.post(
        "/v1/calls", json=call_body(tenant_id=tenant_id, caller=caller), headers=agent
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["body", "caller", "email"]
    assert await db.calls.count_documents({"tenant_id": tenant_id}) == 0


async def test_call_without_tenant_id_or_dialed_number_is_422(intake, agent, call_body):
    reply = await intake.post("/v1/calls", json=call_body(), headers=agent)

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "tenant_id"]


async def test_call_for_a_terminated_tenant_is_refused(intake, agent, create_tenant, call_body, db):
    tenant_id = await create_tenant(
        contract_status="terminated", forwarding_numbers=["0241 1234567"]
    )

    reply = await intake.post(
        "/v1/calls", json=call_body(dialed_number="0241 1234567"), headers=agent
    )

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "dialed_number"]
    assert await db.calls.count_documents({"tenant_id": tenant_id}) == 0


async def test_r_rec_1_consented_recording_is_kept_and_its_consent_published(
    intake, agent, create_tenant, call_body, events
):
    tenant_id = await create_tenant()

    reply = await intake.post(
        "/v1/calls", json=call_body(tenant_id=tenant_id, recording=RECORDING), headers=agent
    )

    call = json.loads((await events.first(CALL_RECEIVED, tenant_id)).value)
    assert call["recording"] == RECORDING
    record = await events.first(CONSENT_CHANGED, tenant_id)
    consent = decode(record.topic, record.value, record.headers).data
    assert isinstance(consent, ConsentChanged)
    assert consent.call_id == reply.json()["id"]
    assert (consent.purpose, consent.status, consent.method) == (
        "recording",
        "granted",
        "verbal_during_call",
    )
    assert consent.subject.value == "+491701234567"
    assert consent.recorded_by == "agent-7"
    assert consent.text_version == "recording-notice-de-v1"


async def test_r_rec_1_recording_url_without_consent_is_refused(
    intake, agent, create_tenant, call_body, events, db
):
    tenant_id = await create_tenant()
    refused = call_body(tenant_id=tenant_id, recording={**RECORDING, "consent": False})

    reply = await intake.post("/v1/calls", json=refused, headers=agent)
    barrier = await intake.post("/v1/calls", json=call_body(tenant_id=tenant_id), headers=agent)

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "recording", "url"]
    await events.first(CALL_RECEIVED, tenant_id)
    await events.settle()
    assert [json.loads(r.value)["call_id"] for r in events.of(CALL_RECEIVED, tenant_id)] == [
        barrier.json()["id"]
    ]
    assert events.of(CONSENT_CHANGED, tenant_id) == []
    assert await db.calls.count_documents({}) == 1


async def test_r_rec_1_no_consent_without_recording_publishes_no_consent(
    intake, agent, create_tenant, call_body, events
):
    tenant_id = await create_tenant()

    await intake.post(
        "/v1/calls",
        json=call_body(tenant_id=tenant_id, recording={"consent": False}),
        headers=agent,
    )

    await events.first(CALL_RECEIVED, tenant_id)
    await events.settle()
    assert events.of(CONSENT_CHANGED, tenant_id) == []


async def test_call_starting_in_the_future_is_refused(intake, agent, create_tenant, call_body):
    tenant_id = await create_tenant()

    reply = await intake.post(
        "/v1/calls",
        json=call_body(tenant_id=tenant_id, started_at="2999-01-01T10:00:00+01:00"),
        headers=agent,
    )

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "started_at"]


async def test_a_retried_capture_with_the_same_idempotency_key_records_one_call(
    intake, agent, create_tenant, call_body, events, db
):
    """A lost 201 and a retry must not make a second call, or a second note."""
    tenant_id = await create_tenant()
    body = call_body(tenant_id=tenant_id)
    retry = {**agent, "Idempotency-Key": "capture-7f3a"}

    first = await intake.post("/v1/calls", json=body, headers=retry)
    again = await intake.post("/v1/calls", json=body, headers=retry)
    other = await intake.post("/v1/calls", json=body, headers={**agent, "Idempotency-Key": "x-2"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json() == first.json()
    assert other.json()["id"] != first.json()["id"]
    assert await db.calls.count_documents({"tenant_id": tenant_id}) == 2
    await events.settle()
    received = [
        decode(r.topic, r.value, r.headers).data for r in events.of(CALL_RECEIVED, tenant_id)
    ]
    assert sorted(c.call_id for c in received) == sorted([first.json()["id"], other.json()["id"]])

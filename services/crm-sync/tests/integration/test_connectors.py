"""Each connector against a real HTTP server speaking its CRM's shapes (R-API-1, R-NOTE-2)."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from switchboard_contracts import make_event
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.topics import collect_events

from .conftest import Vendors
from .helpers import (
    SECRETS,
    client,
    eventually,
    note_created,
    note_deleted,
    publish,
    put_connector,
    settled,
    tenant,
    tenant_changed,
    token,
)
from .vendors import WebhookReceiver, serve


def phone() -> str:
    """A caller's number of this test only."""
    return f"+49151{random.randint(10_000_000, 99_999_999)}"


async def onboard(servers: ServerEndpoints) -> str:
    t = tenant()
    await publish(servers, tenant_changed(t))
    return t


async def test_r_api_1_hubspot_finds_the_contact_by_phone_and_logs_an_associated_inbound_call(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    hubspot = vendors.hubspot
    t, number, secret = await onboard(servers), phone(), token("hubspot")
    hubspot.tokens.add(secret)
    hubspot.contacts["7001"] = {"firstname": "Erika", "lastname": "Mustermann", "phone": number}
    reply = await put_connector(crm, "hubspot", t, credentials={"token": secret})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "active"
    assert secret not in reply.text

    contacts_before = len(hubspot.contacts)
    event = note_created(t, phone=number)
    await publish(servers, event)
    [transfer] = await settled(crm, t, 1)

    assert (transfer["status"], transfer["last_status_code"]) == ("synced", 201)
    [call] = [
        c
        for c in hubspot.objects["calls"].values()
        if c["properties"]["hs_call_from_number"] == number
    ]
    props = call["properties"]
    assert props["hs_call_direction"] == "INBOUND"
    assert props["hs_call_duration"] == "95000"  # milliseconds
    assert props["hs_call_external_id"] == event.data.note_id
    assert "Bitte um Rückruf wegen des Mietvertrags" in props["hs_call_body"]
    assert "Ansprechpartner: Dr. Weber" in props["hs_call_body"]
    assert call["associations"] == [
        {
            "to": {"id": "7001"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
    ]
    assert len(hubspot.contacts) == contacts_before  # found, not created
    [synced] = await collect_events(
        servers.kafka_bootstrap_servers, "crm.synced", tenant=t, expect=1
    )
    assert synced.data.note_id == event.data.note_id
    assert (synced.data.destination, synced.data.destination_region) == ("127.0.0.1", "EU")
    assert (synced.data.legal_basis, synced.data.status_code) == ("contract", 201)
    [entry] = transfer["log"]
    assert entry["legal_basis"] == "contract"
    assert entry["destination_region"] == "EU"


async def test_r_api_1_hubspot_creates_a_missing_contact_once_and_applies_the_tenant_mapping(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    hubspot = vendors.hubspot
    t, number, secret = await onboard(servers), phone(), token("hubspot")
    email = f"{uuid.uuid4().hex[:8]}@example.de"
    hubspot.tokens.add(secret)
    mapping = {
        "record": {"summary": None, "concern": "anliegen"},
        "contact": {"caller_company": None},
        "fixed": {"hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7"},
    }
    reply = await put_connector(crm, "hubspot", t, credentials={"token": secret}, mapping=mapping)
    assert reply.status_code == 200, reply.text
    shown = reply.json()["mapping"]
    assert shown["record"]["concern"] == "anliegen"
    assert "summary" not in shown["record"]

    await publish(servers, note_created(t, phone=number, email=email))
    await settled(crm, t, 1)
    await publish(servers, note_created(t, phone=number, email=email, concern="Zweiter Anruf"))
    await settled(crm, t, 2)

    [(contact_id, contact)] = [
        (i, c) for i, c in hubspot.contacts.items() if c.get("phone") == number
    ]
    assert contact == {
        "firstname": "Erika",
        "lastname": "Mustermann",
        "phone": number,
        "email": email,
    }
    searches = [
        s.body["filterGroups"][0]["filters"][0] for s in hubspot.requests("POST", "contacts/search")
    ]
    assert {"propertyName": "phone", "operator": "EQ", "value": number} in searches
    assert {"propertyName": "email", "operator": "EQ", "value": email} in searches
    calls = [
        c
        for c in hubspot.objects["calls"].values()
        if c["properties"]["hs_call_from_number"] == number
    ]
    assert sorted(c["properties"]["anliegen"] for c in calls) == [
        "Bitte um Rückruf wegen des Mietvertrags",
        "Zweiter Anruf",
    ]
    for call in calls:
        assert "hs_call_body" not in call["properties"]
        assert call["properties"]["hs_call_disposition"] == "f240bbac-87c9-4f6e-bf70-924b57d47db7"
        assert call["associations"][0]["to"]["id"] == contact_id  # one contact for both calls


async def test_r_api_1_hubspot_can_log_a_note_associated_with_type_202(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    t, number, secret = await onboard(servers), phone(), token("hubspot")
    vendors.hubspot.tokens.add(secret)
    reply = await put_connector(
        crm, "hubspot", t, credentials={"token": secret}, mapping={"hubspot_object": "notes"}
    )
    assert reply.status_code == 200, reply.text
    await publish(servers, note_created(t, phone=number))
    [transfer] = await settled(crm, t, 1)
    assert transfer["status"] == "synced"
    [note] = [
        n
        for n in vendors.hubspot.objects["notes"].values()
        if number in n["properties"]["hs_note_body"]
    ]
    assert note["associations"][0]["types"][0]["associationTypeId"] == 202


async def test_r_note_2_hubspot_call_is_deleted_with_the_note_and_redelivery_creates_nothing(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    hubspot = vendors.hubspot
    t, number, secret = await onboard(servers), phone(), token("hubspot")
    hubspot.tokens.add(secret)
    assert (
        await put_connector(crm, "hubspot", t, credentials={"token": secret})
    ).status_code == 200
    event = note_created(t, phone=number)
    again = make_event(event.data, tenant_id=t, source="/test")  # same note, new event id
    await publish(servers, event, event, again)
    await settled(crm, t, 1)

    def calls() -> list[str]:
        return [
            i
            for i, c in hubspot.objects["calls"].items()
            if c["properties"]["hs_call_external_id"] == event.data.note_id
        ]

    [call_id] = calls()
    await publish(servers, note_deleted(event))
    log = await settled(crm, t, 2)
    assert calls() == []
    assert any(s.path.endswith(f"/calls/{call_id}") for s in hubspot.requests("DELETE", "/calls/"))
    [deletion] = [x for x in log if x["operation"] == "delete"]
    assert (deletion["status"], deletion["last_status_code"]) == ("deleted", 204)
    assert "contact stays" in deletion["log"][-1]["detail"]


async def test_r_api_1_salesforce_upserts_the_contact_by_external_id_and_logs_call_tasks(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    salesforce = vendors.salesforce
    t, number, secret = await onboard(servers), phone(), token("salesforce")
    salesforce.tokens.add(secret)
    credentials = {"instance_url": "https://acme.my.salesforce.com", "token": secret}
    reply = await put_connector(crm, "salesforce", t, credentials=credentials)
    assert reply.status_code == 200, reply.text

    first = note_created(t, phone=number)
    await publish(servers, first)
    await settled(crm, t, 1)
    await publish(servers, note_created(t, phone=number, concern="Noch eine Frage"))
    await settled(crm, t, 2)

    [(contact_id, contact)] = [
        (i, c)
        for i, c in salesforce.contacts.items()
        if c.get("Switchboard_Caller_Phone__c") == number
    ]
    assert (contact["FirstName"], contact["LastName"], contact["Phone"]) == (
        "Erika",
        "Mustermann",
        number,
    )
    upserts = salesforce.requests("PATCH", "/sobjects/Contact/Switchboard_Caller_Phone__c/")
    assert len([u for u in upserts if u.path.endswith(number)]) == 2  # created, then updated
    tasks = [x for x in salesforce.tasks.values() if x["WhoId"] == contact_id]
    assert len(tasks) == 2
    for task in tasks:
        assert (task["TaskSubtype"], task["CallType"], task["Status"]) == (
            "Call",
            "Inbound",
            "Completed",
        )
        assert task["CallDurationInSeconds"] == 95
        assert "Ansprechpartner: Dr. Weber" in task["Description"]
    [first_task] = [
        i for i, x in salesforce.tasks.items() if x["Switchboard_Note_Id__c"] == first.data.note_id
    ]

    await publish(servers, note_deleted(first))
    await settled(crm, t, 3)
    assert first_task not in salesforce.tasks
    assert contact_id in salesforce.contacts  # the client's contact stays


async def test_r_api_1_pipedrive_finds_or_creates_the_person_and_logs_calls(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    pipedrive = vendors.pipedrive
    t, number, secret = await onboard(servers), phone(), token("pipedrive")
    pipedrive.tokens.add(secret)
    reply = await put_connector(crm, "pipedrive", t, credentials={"api_token": secret})
    assert reply.status_code == 200, reply.text

    first = note_created(t, phone=number, email=None)
    await publish(servers, first)
    await settled(crm, t, 1)
    await publish(servers, note_created(t, phone=number, email=None))
    await settled(crm, t, 2)

    [(person_id, person)] = [
        (i, p) for i, p in pipedrive.persons.items() if p["phone"][0]["value"] == number
    ]
    assert person["name"] == "Erika Mustermann"
    logs = {i: c for i, c in pipedrive.call_logs.items() if c["from_phone_number"] == number}
    assert len(logs) == 2
    for call in logs.values():
        assert call["person_id"] == int(person_id)
        assert (call["outcome"], call["to_phone_number"], call["duration"]) == (
            "connected",
            "+492411234567",
            "95",
        )
    assert all("api_token" not in s.query for s in pipedrive.seen)  # the token stays out of URLs

    await publish(servers, note_deleted(first))
    log = await settled(crm, t, 3)
    [deletion] = [x for x in log if x["operation"] == "delete"]
    assert (deletion["status"], deletion["last_status_code"]) == ("deleted", 200)
    assert len([c for c in pipedrive.call_logs.values() if c["from_phone_number"] == number]) == 1


@pytest.mark.parametrize(
    "created",
    [{"success": True, "data": {"id": "1/../persons/7"}}, {"success": True, "data": {}}],
    ids=["a path for an id", "no id"],
)
async def test_r_note_2_a_call_log_accepted_without_a_usable_id_is_logged_once_and_kept_honest(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors, created: dict[str, Any]
) -> None:
    """A 201 naming no record we can keep still means Pipedrive has the call: the transfer
    is synced, not failed (an operator's retry would log the call twice), and its deletion
    says it must be done in the CRM instead of calling a made-up path."""
    pipedrive = vendors.pipedrive
    t, number, secret = await onboard(servers), phone(), token("pipedrive")
    pipedrive.tokens.add(secret)
    assert (
        await put_connector(crm, "pipedrive", t, credentials={"api_token": secret})
    ).status_code == 200
    pipedrive.answer_once("POST", "/v1/callLogs", (201, {}, created), body_part=number)

    event = note_created(t, phone=number, email=None)
    await publish(servers, event)
    [transfer] = await settled(crm, t, 1)
    assert (transfer["status"], transfer["last_status_code"]) == ("synced", 201)
    assert "named no record" in transfer["log"][-1]["detail"]
    posts = [s for s in pipedrive.requests("POST", "/v1/callLogs") if number in json.dumps(s.body)]
    assert len(posts) == 1

    deletes_before = len(pipedrive.requests("DELETE", "/v1/callLogs/"))
    await publish(servers, note_deleted(event))
    log = await settled(crm, t, 2)
    [deletion] = [x for x in log if x["operation"] == "delete"]
    assert deletion["status"] == "not_deleted"
    assert "only in the CRM" in deletion["log"][-1]["detail"]
    assert len(pipedrive.requests("DELETE", "/v1/callLogs/")) == deletes_before


async def test_r_api_2_a_search_hit_without_an_id_fails_the_transfer_with_a_reason(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    """HubSpot answering `{"results": [{}]}` was a KeyError: 'internal error'."""
    hubspot = vendors.hubspot
    t, number, secret = await onboard(servers), phone(), token("hubspot")
    hubspot.tokens.add(secret)
    assert (
        await put_connector(crm, "hubspot", t, credentials={"token": secret})
    ).status_code == 200
    odd = {"total": 1, "results": [{}]}
    hubspot.answer_once("POST", "/contacts/search", (200, {}, odd), body_part=number)

    await publish(servers, note_created(t, phone=number))
    [transfer] = await settled(crm, t, 1)
    assert transfer["status"] == "failed"
    assert transfer["log"][-1]["detail"] == "search answer without a usable record id"
    assert not [c for c in hubspot.objects["calls"].values() if number in json.dumps(c)]


async def test_r_api_1_webhook_is_signed_per_standard_webhooks_versioned_and_deduplicable(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    receiver = WebhookReceiver()
    with serve(receiver.app()) as url:
        t = await onboard(servers)
        reply = await put_connector(
            crm,
            "webhook",
            t,
            credentials={"url": f"{url}/hooks/crm"},
            mapping={"fixed": {"source": "switchboard"}},
        )
        assert reply.status_code == 200, reply.text
        secret = reply.json()["secret"]
        assert secret.startswith("whsec_")
        SECRETS.append(secret)
        receiver.secret = secret
        listed = (await crm.get("/v1/connectors", headers=client(t))).json()
        assert secret not in str(listed)  # answered once, never again

        event = note_created(t)
        again = make_event(event.data, tenant_id=t, source="/test")
        await publish(servers, event, event, again)
        await settled(crm, t, 1)
        [delivery] = receiver.deliveries
        assert receiver.bad_signatures == 0  # verified by the standardwebhooks package
        payload: dict[str, Any] = delivery.payload
        assert (payload["type"], payload["version"]) == ("note.created", 1)
        data = payload["data"]
        assert data["note_id"] == event.data.note_id
        assert data["caller"]["phone"] == event.data.caller.phone
        assert data["concern"] == event.data.concern
        assert data["custom"] == {"source": "switchboard"}
        assert delivery.msg_id.startswith("msg_")

        await publish(servers, note_deleted(event))
        await settled(crm, t, 2)
        assert [d.payload["type"] for d in receiver.deliveries] == ["note.created", "note.deleted"]
        assert receiver.deliveries[1].payload["data"]["note_id"] == event.data.note_id

        own = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes
        SECRETS.append(own)
        reply = await put_connector(crm, "webhook", t, credentials={"url": url, "secret": own})
        assert reply.status_code == 200
        assert reply.json()["secret"] is None
        assert Webhook(own)  # the given secret is a valid Standard Webhooks secret


async def test_r_note_2_a_note_deleted_before_its_creation_arrived_never_reaches_the_crm(
    crm: httpx.AsyncClient, servers: ServerEndpoints, db: Any
) -> None:
    """`note.deleted` and `note.created` come on two topics: the deletion may come first."""
    receiver = WebhookReceiver()
    with serve(receiver.app()) as url:
        t = await onboard(servers)
        reply = await put_connector(crm, "webhook", t, credentials={"url": f"{url}/hooks/crm"})
        assert reply.status_code == 200, reply.text
        receiver.secret = reply.json()["secret"]
        SECRETS.append(receiver.secret)
        deleted, kept = note_created(t), note_created(t, concern="Bitte zurückrufen")

        await publish(servers, note_deleted(deleted))
        await eventually(
            lambda: _tombstone(db, t, deleted.data.note_id), what="the deletion remembered"
        )
        await publish(servers, deleted, kept)  # the late creation, then another note after it
        [transfer] = await settled(crm, t, 1)

        assert transfer["note_id"] == kept.data.note_id
        assert [d.payload["data"]["note_id"] for d in receiver.deliveries] == [kept.data.note_id]
        assert await db["transfers"].count_documents({"note_id": deleted.data.note_id}) == 0


async def _tombstone(db: Any, tenant_id: str, note_id: str) -> bool:
    found: int = await db["deleted_notes"].count_documents(
        {"tenant_id": tenant_id, "note_id": note_id}
    )
    return found > 0

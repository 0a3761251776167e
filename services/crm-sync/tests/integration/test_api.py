"""The HTTP API: tenant isolation, bad input, paging, and credentials that never come back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.credentials import Keyring
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header

from .conftest import LOGS, Vendors
from .helpers import (
    OPERATOR,
    SECRETS,
    client,
    eventually,
    note_created,
    publish,
    put_connector,
    raw_records,
    settled,
    tenant,
    tenant_changed,
    token,
)
from .vendors import WebhookReceiver, serve

BAD_PUTS: dict[str, tuple[str, dict[str, Any], list[Any]]] = {
    "credentials missing": ("hubspot", {"region": "EU"}, ["body", "credentials"]),
    "region missing": ("hubspot", {"credentials": {"token": "x" * 20}}, ["body", "region"]),
    "token with spaces": (
        "hubspot",
        {"credentials": {"token": "my secret token value"}, "region": "EU"},
        ["body", "credentials", "token"],
    ),
    "token of another kind": (
        "pipedrive",
        {"credentials": {"token": "x" * 20}, "region": "EU"},
        [["body", "credentials", "api_token"], ["body", "credentials", "token"]],
    ),
    "webhook secret without whsec_": (
        "webhook",
        {
            "credentials": {"url": "https://hooks.example.com", "secret": "plain-secret-1234"},
            "region": "EU",
        },
        ["body", "credentials", "secret"],
    ),
    "unknown credential field": (
        "hubspot",
        {"credentials": {"token": "x" * 20, "password": "hunter2hunter2"}, "region": "EU"},
        ["body", "credentials", "password"],
    ),
    "region that is no code": (
        "hubspot",
        {"credentials": {"token": "x" * 20}, "region": "Europe"},
        ["body", "region"],
    ),
    "unknown safeguard": (
        "hubspot",
        {"credentials": {"token": "x" * 20}, "region": "US", "safeguard": "contract"},
        ["body", "safeguard"],
    ),
    "unknown note field": (
        "hubspot",
        {
            "credentials": {"token": "x" * 20},
            "region": "EU",
            "mapping": {"record": {"colour": "x"}},
        },
        ["body", "mapping", "record", "colour", "[key]"],
    ),
    "property name with spaces": (
        "hubspot",
        {
            "credentials": {"token": "x" * 20},
            "region": "EU",
            "mapping": {"record": {"concern": "my prop"}},
        },
        ["body", "mapping", "record", "concern"],
    ),
    "webhook renames": (
        "webhook",
        {
            "credentials": {"url": "https://hooks.example.com"},
            "region": "EU",
            "mapping": {"record": {"concern": "c"}},
        },
        ["body", "mapping", "record"],
    ),
    "option of another kind": (
        "pipedrive",
        {
            "credentials": {"api_token": "x" * 20},
            "region": "EU",
            "mapping": {"hubspot_object": "notes"},
        },
        ["body", "mapping", "hubspot_object"],
    ),
    "salesforce instance elsewhere": (
        "salesforce",
        {
            "credentials": {"instance_url": "ftp://acme.my.salesforce.com", "token": "x" * 20},
            "region": "EU",
        },
        ["body", "credentials", "instance_url"],
    ),
    "fixed integer beyond 64 bits (MongoDB's limit)": (
        "hubspot",
        {
            "credentials": {"token": "x" * 20},
            "region": "EU",
            "mapping": {"fixed": {"hs_call_priority": 2**63}},
        },
        ["body", "mapping", "fixed", "hs_call_priority"],
    ),
    "fixed value of no allowed type": (
        "hubspot",
        {
            "credentials": {"token": "x" * 20},
            "region": "EU",
            "mapping": {"contact_fixed": {"lifecyclestage": None}},
        },
        ["body", "mapping", "contact_fixed", "lifecyclestage"],
    ),
    "misspelt field": (
        "hubspot",
        {"credentals": {"token": "x" * 20}, "region": "EU"},
        ["body", "credentals"],
    ),
}


@pytest.mark.parametrize(("kind", "body", "loc"), BAD_PUTS.values(), ids=BAD_PUTS.keys())
async def test_bad_connector_input_is_422_naming_the_field_without_echoing_it(
    crm: httpx.AsyncClient, kind: str, body: dict[str, Any], loc: list[Any]
) -> None:
    t = tenant()
    reply = await crm.put(f"/v1/connectors/{kind}", json=body, headers=client(t))
    assert reply.status_code == 422, reply.text
    expected = loc if isinstance(loc[0], list) else [loc]  # the fields at fault, each named
    assert [e["loc"] for e in reply.json()["detail"]] == expected
    for value in ("my secret token value", "plain-secret-1234", "hunter2hunter2", "my prop"):
        assert value not in reply.text
    assert (await crm.get("/v1/connectors", headers=client(t))).json() == []


async def test_every_credential_at_fault_is_named_with_its_own_rule(
    crm: httpx.AsyncClient,
) -> None:
    t = tenant()
    body = {"credentials": {"instance_url": "", "passwort": "hunter2hunter2"}, "region": "EU"}
    reply = await crm.put("/v1/connectors/salesforce", json=body, headers=client(t))
    assert reply.status_code == 422, reply.text
    found = {tuple(e["loc"]): e["type"] for e in reply.json()["detail"]}
    assert found == {
        ("body", "credentials", "instance_url"): "string_too_short",
        ("body", "credentials", "token"): "missing",
        ("body", "credentials", "passwort"): "extra_forbidden",
    }
    assert "hunter2" not in reply.text


async def test_unknown_kind_and_status_are_422(crm: httpx.AsyncClient) -> None:
    t = tenant()
    reply = await crm.put("/v1/connectors/zoho", json={}, headers=client(t))
    assert (reply.status_code, reply.json()["detail"][0]["loc"]) == (422, ["path", "kind"])
    reply = await crm.get("/v1/transfers", params={"status": "lost"}, headers=client(t))
    assert (reply.status_code, reply.json()["detail"][0]["loc"]) == (422, ["query", "status"])
    reply = await crm.get("/v1/connectors", headers=OPERATOR)
    assert (reply.status_code, reply.json()["detail"][0]["loc"]) == (422, ["query", "tenant_id"])


async def test_an_operators_connector_for_a_tenant_never_learnt_of_is_422_until_announced(
    crm: httpx.AsyncClient, servers: ServerEndpoints, db: Any
) -> None:
    """Credentials stored under a mistyped tenant id would serve no one: refused, naming the
    parameter, and nothing stored; once `tenant.changed` announced the tenant, the same write
    is taken. A client's own tenant (from its token) is not checked: see put_connector."""
    t = tenant()
    body = {"credentials": {"token": token("hubspot")}, "region": "EU"}
    at_t = {"tenant_id": t}

    async def listed() -> list[Any]:
        reply = await crm.get("/v1/connectors", params=at_t, headers=OPERATOR)
        assert reply.status_code == 200, reply.text
        found: list[Any] = reply.json()
        return found

    refused = await crm.put("/v1/connectors/hubspot", params=at_t, json=body, headers=OPERATOR)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["query", "tenant_id"]
    assert "no such tenant is known to this service" in error["msg"]
    assert await listed() == []

    await publish(servers, tenant_changed(t))

    async def learnt() -> bool:
        return await db.tenants.find_one({"_id": t}) is not None

    await eventually(learnt, what="the tenant's profile")
    taken = await crm.put("/v1/connectors/hubspot", params=at_t, json=body, headers=OPERATOR)
    assert taken.status_code == 200, taken.text
    assert [c["kind"] for c in await listed()] == ["hubspot"]


async def test_r_api_2_another_tenants_connectors_and_transfers_answer_404(
    crm: httpx.AsyncClient, vendors: Vendors
) -> None:
    a, b, secret = tenant(), tenant(), token("hubspot")
    vendors.hubspot.tokens.add(secret)
    assert (
        await put_connector(crm, "hubspot", a, credentials={"token": secret})
    ).status_code == 200
    as_b, other = client(b), {"tenant_id": a}
    calls = [
        crm.get("/v1/connectors", params=other, headers=as_b),
        crm.put("/v1/connectors/hubspot", params=other, json={"enabled": False}, headers=as_b),
        crm.delete("/v1/connectors/hubspot", params=other, headers=as_b),
        crm.post("/v1/connectors/hubspot/test", params=other, headers=as_b),
        crm.get("/v1/transfers", params=other, headers=as_b),
    ]
    for call in calls:
        assert (await call).status_code == 404
    assert (await crm.delete("/v1/connectors/hubspot", headers=as_b)).status_code == 404
    assert (await crm.get("/v1/connectors", headers=as_b)).json() == []
    assert (await crm.get("/v1/connectors", headers=client(a))).json()[0]["enabled"] is True
    agent = auth_header("agent", sub="agent-7")
    assert (await crm.get("/v1/connectors", headers=agent)).status_code == 403
    assert (await crm.get("/v1/connectors", params=other, headers=OPERATOR)).status_code == 200


async def test_transfer_log_pages_with_cursors_bound_to_the_tenant(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    receiver = WebhookReceiver()
    with serve(receiver.app()) as url:
        t = tenant()
        await publish(servers, tenant_changed(t))
        reply = await put_connector(crm, "webhook", t, credentials={"url": url})
        receiver.secret = reply.json()["secret"]
        SECRETS.append(receiver.secret)
        notes = [note_created(t) for _ in range(5)]
        await publish(servers, *notes)
        await settled(crm, t, 5)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await crm.get("/v1/transfers", params=params, headers=client(t))).json()
        seen += [x["note_id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(n.data.note_id for n in notes)
    one = (
        await crm.get("/v1/transfers", params={"note_id": notes[0].data.note_id}, headers=client(t))
    ).json()
    assert [x["note_id"] for x in one["items"]] == [notes[0].data.note_id]
    first = (await crm.get("/v1/transfers", params={"limit": 1}, headers=client(t))).json()
    other = tenant()
    for forged in (first["next_cursor"], first["next_cursor"][:-2] + "xx", "nonsense"):
        reply = await crm.get("/v1/transfers", params={"cursor": forged}, headers=client(other))
        assert (reply.status_code, reply.json()["detail"][0]["loc"]) == (422, ["query", "cursor"])
    by_status = (
        await crm.get("/v1/transfers", params={"status": "synced"}, headers=client(t))
    ).json()
    assert len(by_status["items"]) == 5


async def test_connector_test_call_and_removal_erase_nothing_but_what_they_should(
    crm: httpx.AsyncClient, vendors: Vendors, db: Any
) -> None:
    t, secret = tenant(), token("hubspot")
    vendors.hubspot.tokens.add(secret)
    assert (
        await put_connector(crm, "hubspot", t, credentials={"token": secret})
    ).status_code == 200
    reply = await crm.post("/v1/connectors/hubspot/test", headers=client(t))
    assert reply.json() == {"ok": True, "status_code": 200, "detail": "ok"}
    await put_connector(crm, "hubspot", t, credentials={"token": token("hubspot-wrong")})
    reply = await crm.post("/v1/connectors/hubspot/test", headers=client(t))
    assert reply.json() == {"ok": False, "status_code": 401, "detail": "unauthorized"}
    assert (await crm.delete("/v1/connectors/hubspot", headers=client(t))).status_code == 204
    assert await db.connectors.find_one({"tenant_id": t}) is None  # credentials erased
    assert (await crm.delete("/v1/connectors/hubspot", headers=client(t))).status_code == 404


async def test_r_api_2_credentials_never_appear_in_logs_events_answers_or_the_transfer_log(
    crm: httpx.AsyncClient,
    servers: ServerEndpoints,
    vendors: Vendors,
    db: Any,
    settings: CrmSyncSettings,
) -> None:
    t, wrong, right = tenant(), token("hubspot-wrong"), token("hubspot")
    vendors.hubspot.tokens.add(right)
    vendors.pipedrive.tokens.add(pd := token("pipedrive"))
    vendors.salesforce.tokens.add(sf := token("salesforce"))
    await publish(servers, tenant_changed(t))
    answers: list[str] = []
    for kind, credentials in (
        ("hubspot", {"token": wrong}),
        ("pipedrive", {"api_token": pd}),
        ("salesforce", {"instance_url": "https://acme.my.salesforce.com", "token": sf}),
    ):
        answers.append((await put_connector(crm, kind, t, credentials=credentials)).text)
    await publish(servers, note_created(t))
    await settled(crm, t, 2)  # pipedrive and salesforce; hubspot waits for its credentials
    answers.append((await crm.post("/v1/connectors/hubspot/test", headers=client(t))).text)
    answers.append((await put_connector(crm, "hubspot", t, credentials={"token": right})).text)
    await settled(crm, t, 3)
    answers.append((await crm.get("/v1/connectors", headers=client(t))).text)
    answers.append((await crm.get("/v1/transfers", headers=client(t))).text)

    events = await raw_records(servers.kafka_bootstrap_servers, ("crm.synced", "crm.failed"), t)
    assert len(events) >= 4
    stored = [
        str(d)
        for c in ("connectors", "transfers", "records")
        for d in await db[c].find({"tenant_id": t}).to_list()
    ]
    everything = "\n".join(
        [*answers, *(e.decode(errors="replace") for e in events), *stored, LOGS.getvalue()]
    )
    assert '"transfer attempt"' in LOGS.getvalue()  # the logs were captured
    leaked = [s for s in SECRETS if s in everything]
    assert leaked == []

    sealed = (await db.connectors.find_one({"tenant_id": t, "kind": "hubspot"}))["credentials"]
    assert set(sealed) == {"alg", "kid", "nonce", "ciphertext"}
    assert sealed["alg"] == "AES-256-GCM"
    keyring = Keyring.from_setting(settings.credentials_key.get_secret_value())  # type: ignore[union-attr]
    assert keyring.open(sealed, bound_to=f"{t}:hubspot") == {"token": right}

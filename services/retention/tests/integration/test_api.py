"""The retention API on the session's servers, with one participant that never answers.

Nothing here needs a data-holding service: the participant `ghost` answers only when a test
puts its receipt on `retention.completed`, as a late service would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from switchboard_contracts import Event, encode, make_event
from switchboard_contracts.categories import DataCategory, RecordCount
from switchboard_contracts.retention import RetentionCompleted
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header
from switchboard_retention.config import RetentionSettings
from switchboard_retention.main import create_app

from ..support import OPERATOR, announce, retention_settings, until

PHONE = "+4915112345678"


@pytest.fixture(scope="module")
def settings(servers: ServerEndpoints) -> RetentionSettings:
    return retention_settings(
        servers, participants="ghost", answer_timeout_s=1.0, verify_interval_s=1
    )


@pytest.fixture(scope="module")
def app(settings: RetentionSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="module")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        yield client


@pytest.fixture
def db(mongo: AsyncMongoClient[dict[str, Any]], settings: RetentionSettings) -> Any:
    return mongo[settings.mongodb_database]


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def tenant(servers: ServerEndpoints, db: Any) -> str:
    """A tenant of this test alone, announced on `tenant.changed` and stored by retention."""
    made = _tenant()
    await announce(servers, db, made)
    return made


async def _sweep(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    reply = await api.post("/v1/sweeps", json=body, headers=OPERATOR)
    assert reply.status_code == 202, reply.text
    sweep: dict[str, Any] = (
        await api.get(f"/v1/sweeps/{reply.json()['id']}", headers=OPERATOR)
    ).json()
    return sweep


async def _status(api: httpx.AsyncClient, sweep_id: str, wanted: str) -> dict[str, Any] | None:
    sweep: dict[str, Any] = (await api.get(f"/v1/sweeps/{sweep_id}", headers=OPERATOR)).json()
    return sweep if sweep["status"] == wanted else None


async def test_r_ret_1_to_5_the_policy_table_names_each_requirement(
    api: httpx.AsyncClient,
) -> None:
    reply = await api.get("/v1/policies", headers=OPERATOR)
    assert reply.status_code == 200
    table = {p["category"]: (p["requirement"], p["period"]) for p in reply.json()}
    assert table == {
        "call_data": ("R-RET-1", "P60D"),
        "recording": ("R-RET-2", "P30D"),
        "prospect_onboarding": ("R-RET-3", "P90D"),
        "customer_account": ("R-RET-4", "P5Y"),
        "legal_hold": ("R-RET-5", "P10Y"),
    }


ROUTES = [
    ("GET", "/v1/policies"),
    ("POST", "/v1/sweeps"),
    ("GET", "/v1/sweeps"),
    ("GET", "/v1/sweeps/x"),
    ("POST", "/v1/holds"),
    ("GET", "/v1/holds"),
    ("DELETE", "/v1/holds/x"),
    ("POST", "/v1/dsr"),
    ("GET", "/v1/dsr"),
    ("GET", "/v1/dsr/x"),
    ("POST", "/v1/dsr/x/extension"),
    ("POST", "/v1/dsr/x/lift"),
    ("GET", "/v1/dsr/x/export"),
    ("GET", "/v1/receipts"),
    ("GET", "/v1/receipts/verify"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_r_sec_2_only_operators_reach_the_retention_api(
    api: httpx.AsyncClient, method: str, path: str
) -> None:
    for roles in (("client",), ("agent",), ("client", "agent")):
        headers = auth_header(*roles, tenant="t1" if "client" in roles else None)
        reply = await api.request(method, path, headers=headers, json={})
        assert reply.status_code == 403, (roles, reply.text)
    assert (await api.request(method, path)).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/sweeps", {"as_of": "2026-01-01T00:00:00"}, ["body", "as_of"]),
        ("/v1/sweeps", {"tenant": "t1"}, ["body", "tenant"]),
        ("/v1/holds", {"tenant_id": "t1", "until": "2030-01-01"}, ["body", "reason"]),
        ("/v1/holds", {"reason": "audit", "until": "2030-01-01"}, ["body"]),
        (
            "/v1/holds",
            {"tenant_id": "t1", "reason": "audit", "until": "2020-01-01"},
            ["body", "until"],
        ),
        (
            "/v1/holds",
            {"tenant_id": "t1", "reason": "audit", "until": "9999-12-31"},
            ["body", "until"],
        ),
        (
            "/v1/holds",
            {"subject": {"kind": "phone", "value": "12"}, "reason": "r", "until": "2030-01-01"},
            ["body", "subject", "value"],
        ),
        ("/v1/dsr", {"right": "access", "identifiers": []}, ["body", "identifiers"]),
        (
            "/v1/dsr",
            {"right": "access", "identifiers": [{"kind": "email", "value": "nope"}]},
            ["body", "identifiers", 0, "value"],
        ),
        (
            "/v1/dsr",
            {"right": "teleport", "identifiers": [{"kind": "phone", "value": PHONE}]},
            ["body", "right"],
        ),
        (
            "/v1/dsr",
            {
                "right": "access",
                "identifiers": [{"kind": "phone", "value": PHONE}],
                "corrections": [{"field": "name", "value": "X"}],
            },
            ["body", "corrections"],
        ),
        (
            "/v1/dsr",
            {"right": "rectification", "identifiers": [{"kind": "phone", "value": PHONE}]},
            ["body"],
        ),
        (
            "/v1/dsr",
            {
                "right": "access",
                "identifiers": [{"kind": "phone", "value": PHONE}],
                "received_at": "2999-01-01T00:00:00Z",
            },
            ["body", "received_at"],
        ),
        (  # backdated before the GDPR applied: overdue at once, and no GDPR request
            "/v1/dsr",
            {
                "right": "access",
                "identifiers": [{"kind": "phone", "value": PHONE}],
                "received_at": "1900-01-01T00:00:00Z",
            },
            ["body", "received_at"],
        ),
    ],
)
async def test_bad_input_answers_422_naming_the_field(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    reply = await api.post(path, json=body, headers=OPERATOR)
    assert reply.status_code == 422, reply.text
    assert loc in [e["loc"] for e in reply.json()["detail"]]


async def test_a_receipt_position_beyond_64_bits_is_refused_not_a_server_error(
    api: httpx.AsyncClient,
) -> None:
    """Schemathesis found it: `after` past a BSON integer broke the query (500)."""
    for after, status in ((2**63 - 1, 200), (2**63, 422), (10**21, 422)):
        reply = await api.get("/v1/receipts", params={"after": after}, headers=OPERATOR)
        assert reply.status_code == status, reply.text
    assert ["query", "after"] in [e["loc"] for e in reply.json()["detail"]]


async def test_r_ret_5_holds_are_placed_listed_and_lifted_explicitly(
    api: httpx.AsyncClient, tenant: str
) -> None:
    body = {
        "tenant_id": tenant,
        "subject": {"kind": "phone", "value": "0151 12345678"},
        "category": "call_data",
        "reason": "R-RET-5: tax audit 2026",
        "until": (date.today() + timedelta(days=30)).isoformat(),
    }
    placed = await api.post("/v1/holds", json=body, headers=OPERATOR)
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["subject"] == {"kind": "phone", "value": PHONE}  # German notation normalised
    assert hold["placed_by"] == "operator:op-1"
    assert not hold["lifted"]
    active = (await api.get("/v1/holds", headers=OPERATOR)).json()
    assert hold["id"] in [h["id"] for h in active]
    assert (await api.delete(f"/v1/holds/{hold['id']}", headers=OPERATOR)).status_code == 204
    assert (await api.delete(f"/v1/holds/{hold['id']}", headers=OPERATOR)).status_code == 404
    assert hold["id"] not in [
        h["id"] for h in (await api.get("/v1/holds", headers=OPERATOR)).json()
    ]
    every = (await api.get("/v1/holds", params={"include_lifted": True}, headers=OPERATOR)).json()
    lifted = next(h for h in every if h["id"] == hold["id"])
    assert lifted["lifted"]
    assert lifted["lifted_by"] == "operator:op-1"
    assert lifted["lifted_at"]


def _in_a_month() -> str:
    return (date.today() + timedelta(days=30)).isoformat()


Listing = tuple[str, dict[str, Any]]
TENANT_WRITES: dict[str, tuple[str, Callable[[str], dict[str, Any]], Listing]] = {
    # what an operator writes naming a tenant: path, body, where it is listed
    "hold": (
        "/v1/holds",
        lambda t: {"tenant_id": t, "reason": "R-RET-5: tax audit", "until": _in_a_month()},
        ("/v1/holds", {"include_lifted": True}),
    ),
    "dsr": (
        "/v1/dsr",
        lambda t: (
            {"right": "access", "identifiers": [{"kind": "phone", "value": PHONE}]}
            | {"tenant_id": t}
        ),
        ("/v1/dsr", {"limit": 200}),
    ),
    "sweep": ("/v1/sweeps", lambda t: {"tenant_id": t}, ("/v1/sweeps", {"limit": 200})),
}


@pytest.mark.parametrize("kind", TENANT_WRITES)
async def test_a_write_naming_a_tenant_retention_never_learnt_of_is_422_until_announced(
    api: httpx.AsyncClient, servers: ServerEndpoints, db: Any, kind: str
) -> None:
    """A hold on a mistyped tenant would protect nothing while it looked in force (R-RET-5);
    a sweep or request limited to one would find nothing and look done. Refused, nothing
    stored; once `tenant.changed` announced the tenant, the same write goes through."""
    path, body, (listing, params) = TENANT_WRITES[kind]
    tenant = _tenant()

    async def listed() -> list[Any]:
        reply = await api.get(listing, params=params, headers=OPERATOR)
        assert reply.status_code == 200, reply.text
        return [item for item in reply.json() if item["tenant_id"] == tenant]

    refused = await api.post(path, json=body(tenant), headers=OPERATOR)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "tenant_id"]
    assert "no such tenant is known to this service" in error["msg"]
    assert tenant not in refused.text  # errors name the field, never echo the input
    assert await listed() == []

    await announce(servers, db, tenant)
    accepted = await api.post(path, json=body(tenant), headers=OPERATOR)
    assert accepted.status_code in (201, 202), accepted.text
    assert [item["id"] for item in await listed()] == [accepted.json()["id"]]


async def test_r_ret_6_a_participant_that_never_answers_leaves_the_sweep_incomplete_until_it_does(
    api: httpx.AsyncClient, servers: ServerEndpoints, tenant: str
) -> None:
    sweep = await _sweep(api, tenant_id=tenant)
    assert sweep["status"] == "running"
    assert len(sweep["missing"]) == 5
    assert {m["service"] for m in sweep["missing"]} == {"ghost"}
    await until(lambda: _status(api, sweep["id"], "incomplete"), timeout_s=10)
    metrics = (await api.get("/metrics")).text
    await until(lambda: _incomplete_gauge(api), timeout_s=5)
    assert "switchboard_retention_sweeps" in metrics

    late = [
        make_event(
            RetentionCompleted(
                request_id=order["request_id"],
                service="ghost",
                erased=(RecordCount(category=DataCategory.CALL_DATA, collection="c", count=2),),
                completed_at=datetime.now(UTC),
            ),
            tenant_id=tenant,
            source="/switchboard/ghost",
        )
        for order in sweep["orders"]
    ]
    await produce(servers.kafka_bootstrap_servers, [encode(e) for e in late])
    done = await until(lambda: _status(api, sweep["id"], "completed"), timeout_s=20)
    assert done["missing"] == []
    assert sorted(r["request_id"] for r in done["receipts"]) == sorted(
        o["request_id"] for o in sweep["orders"]
    )
    assert all(r["service"] == "ghost" and r["erased"][0]["count"] == 2 for r in done["receipts"])


async def _incomplete_gauge(api: httpx.AsyncClient) -> bool:
    for line in (await api.get("/metrics")).text.splitlines():
        if line.startswith('switchboard_retention_sweeps{status="incomplete"}'):
            return float(line.split()[-1]) >= 1
    return False


async def _stored_receipts(
    servers: ServerEndpoints, db: Any, *counts: int
) -> tuple[list[Event[RetentionCompleted]], list[dict[str, Any]]]:
    """Receipts of one tenant, produced (the first twice) and stored: the events and docs."""
    tenant = _tenant()
    receipts = [
        make_event(
            RetentionCompleted(
                request_id=f"tamper-{uuid.uuid4().hex[:8]}",
                service="notes",
                erased=(RecordCount(category=DataCategory.CALL_DATA, collection="notes", count=n),),
                completed_at=datetime.now(UTC),
            ),
            tenant_id=tenant,
            source="/switchboard/notes",
        )
        for n in counts
    ]
    await produce(servers.kafka_bootstrap_servers, [encode(e) for e in [*receipts, receipts[0]]])
    ids = [e.data.request_id for e in receipts]

    async def stored() -> list[dict[str, Any]] | None:
        docs = [d async for d in db.receipts.find({"request_id": {"$in": ids}}).sort("seq", 1)]
        return docs if len(docs) == len(ids) else None

    return receipts, await until(stored)


async def test_r_ret_6_tampering_with_a_stored_receipt_is_detected_by_verify(
    api: httpx.AsyncClient, servers: ServerEndpoints, db: Any
) -> None:
    receipts, docs = await _stored_receipts(servers, db, 3, 4, 5)
    ids = [e.data.request_id for e in receipts]
    verdict = (await api.get("/v1/receipts/verify", headers=OPERATOR)).json()
    assert verdict["valid"]
    assert verdict["count"] >= 3
    page = (await api.get("/v1/receipts", params={"request_id": ids[1]}, headers=OPERATOR)).json()
    assert [r["erased"][0]["count"] for r in page["items"]] == [4]  # the redelivery stored once

    target = docs[1]
    await db.receipts.update_one({"_id": target["_id"]}, {"$set": {"erased": []}})
    try:
        broken = (await api.get("/v1/receipts/verify", headers=OPERATOR)).json()
        assert broken["valid"] is False
        assert broken["broken_at"] == target["_id"]
    finally:
        await db.receipts.replace_one({"_id": target["_id"]}, target)
    assert (await api.get("/v1/receipts/verify", headers=OPERATOR)).json()["valid"]


async def test_r_sec_4_a_broken_receipt_chain_shows_in_the_metrics_without_anyone_asking(
    api: httpx.AsyncClient, servers: ServerEndpoints, db: Any
) -> None:
    """The scheduler verifies the chain every RETENTION_VERIFY_INTERVAL_S: the gauge the
    alert SwitchboardReceiptChainBroken watches turns 0 with no call of /verify."""

    async def chain_valid(expected: float) -> bool:
        for line in (await api.get("/metrics")).text.splitlines():
            if line.startswith("switchboard_retention_receipt_chain_valid "):
                return float(line.split()[-1]) == expected
        return False

    _, docs = await _stored_receipts(servers, db, 7)
    await until(lambda: chain_valid(1.0))
    target = docs[0]
    await db.receipts.update_one({"_id": target["_id"]}, {"$set": {"erased": []}})
    try:
        await until(lambda: chain_valid(0.0))
    finally:
        await db.receipts.replace_one({"_id": target["_id"]}, target)
    await until(lambda: chain_valid(1.0))


async def _dsr(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    request = {"right": "access", "identifiers": [{"kind": "phone", "value": PHONE}], **body}
    reply = await api.post("/v1/dsr", json=request, headers=OPERATOR)
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


async def test_r_dsr_t_a_request_is_due_in_one_month_and_extended_with_a_reason(
    api: httpx.AsyncClient,
) -> None:
    created = await _dsr(api, received_at="2026-01-31T09:00:00+01:00")
    assert created["status"] == "open"
    assert created["due_at"].startswith("2026-02-28T08:00:00")
    fresh = await _dsr(api)
    url = f"/v1/dsr/{fresh['id']}/extension"
    missing_reason = await api.post(url, json={"months": 1}, headers=OPERATOR)
    assert missing_reason.status_code == 422
    assert ["body", "reason"] in [e["loc"] for e in missing_reason.json()["detail"]]
    extended = await api.post(url, json={"months": 1, "reason": "many services"}, headers=OPERATOR)
    assert extended.status_code == 200, extended.text
    received = datetime.fromisoformat(fresh["received_at"])
    assert datetime.fromisoformat(extended.json()["due_at"]) > received + timedelta(days=58)
    assert extended.json()["extensions"][0]["reason"] == "many services"
    too_long = await api.post(url, json={"months": 2, "reason": "more"}, headers=OPERATOR)
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "months"]
    old = await _dsr(api, received_at=(datetime.now(UTC) - timedelta(days=40)).isoformat())
    late = await api.post(
        f"/v1/dsr/{old['id']}/extension", json={"months": 1, "reason": "x"}, headers=OPERATOR
    )
    assert late.status_code == 422


async def test_r_dsr_t_requests_near_or_past_due_show_in_the_list_and_metrics(
    api: httpx.AsyncClient,
) -> None:
    now = datetime.now(UTC)
    overdue = await _dsr(api, received_at=(now - timedelta(days=40)).isoformat())
    near = await _dsr(api, received_at=(now - timedelta(days=27)).isoformat())
    listed = (await api.get("/v1/dsr", params={"deadline": "overdue"}, headers=OPERATOR)).json()
    assert overdue["id"] in [r["id"] for r in listed]
    assert near["id"] not in [r["id"] for r in listed]
    one = (await api.get(f"/v1/dsr/{near['id']}", headers=OPERATOR)).json()
    assert one["deadline"] == "near_due"
    assert one["missing"] == ["ghost"]
    assert one["overdue"] is None

    async def delay_recorded() -> dict[str, Any] | None:
        late: dict[str, Any] = (await api.get(f"/v1/dsr/{overdue['id']}", headers=OPERATOR)).json()
        delay: dict[str, Any] | None = late["overdue"]
        return delay

    # the scheduler records the delay with its reason, without anyone asking (R-DSR-T)
    delay = await until(delay_recorded)
    assert delay["reason"] == "past due with no answer from ghost"

    async def gauges() -> bool:
        text = (await api.get("/metrics")).text
        return all(
            any(
                line.startswith(f'switchboard_retention_dsr_unfinished{{deadline="{state}"}}')
                and float(line.split()[-1]) >= 1
                for line in text.splitlines()
            )
            for state in ("overdue", "near_due")
        )

    await until(gauges, timeout_s=5)


async def test_export_and_lift_answer_409_for_requests_of_another_kind(
    api: httpx.AsyncClient, tenant: str
) -> None:
    erasure = await _dsr(api, right="erasure", tenant_id=tenant)
    assert (await api.get(f"/v1/dsr/{erasure['id']}/export", headers=OPERATOR)).status_code == 409
    access = await _dsr(api)
    assert (await api.post(f"/v1/dsr/{access['id']}/lift", headers=OPERATOR)).status_code == 409
    assert (await api.get("/v1/dsr/unknown", headers=OPERATOR)).status_code == 404

"""Delivery semantics: rate limits, refused credentials, gone receivers, dead CRMs, policy."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx

from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.topics import collect_events

from .conftest import Vendors
from .helpers import (
    OPERATOR,
    SECRETS,
    client,
    eventually,
    note_created,
    publish,
    put_connector,
    settled,
    tenant,
    tenant_changed,
    token,
    transfers,
)
from .vendors import Answer, WebhookReceiver, serve


async def webhook_tenant(
    crm: httpx.AsyncClient,
    servers: ServerEndpoints,
    receiver: WebhookReceiver,
    url: str,
    **body: Any,
) -> str:
    """A tenant whose webhook connector points at `receiver`."""
    t = tenant()
    await publish(servers, tenant_changed(t, secrecy_bound=body.pop("secrecy_bound", False)))
    reply = await put_connector(crm, "webhook", t, credentials={"url": url}, **body)
    assert reply.status_code == 200, reply.text
    receiver.secret = reply.json()["secret"]
    SECRETS.append(receiver.secret)
    return t


def throttled_for(seconds: float) -> Any:
    """429 with `Retry-After: 2` from the first request on, for `seconds`; then normal."""
    started: list[float] = []

    def behaviour(_: WebhookReceiver) -> Answer | None:
        now = time.monotonic()
        started.append(now)
        if now - started[0] < seconds:
            return 429, {"Retry-After": "2"}, {"error": "slow down"}
        return None

    return behaviour


async def test_r_api_2_rate_limited_receiver_gets_everything_later_and_other_tenants_go_on(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    slow, fast = WebhookReceiver(behaviour=throttled_for(10.0)), WebhookReceiver()
    with serve(slow.app()) as slow_url, serve(fast.app()) as fast_url:
        a = await webhook_tenant(crm, servers, slow, slow_url)
        b = await webhook_tenant(crm, servers, fast, fast_url)
        notes_a = [note_created(a) for _ in range(6)]
        started = time.monotonic()
        await publish(servers, *notes_a)
        await eventually(lambda: len(slow.posts) > 0, what="the first 429")

        throttle_ends = slow.posts[0][0] + 10.0
        latencies: list[float] = []
        while time.monotonic() < throttle_ends - 2.0 and len(latencies) < 8:
            sent = time.monotonic()  # while tenant A is throttled, tenant B's notes keep flowing
            await publish(servers, note_created(b))
            count = len(fast.deliveries) + 1
            await eventually(lambda n=count: len(fast.deliveries) >= n, what="tenant B's note")
            latencies.append(fast.deliveries[-1].at - sent)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - sent)))
        assert len(latencies) >= 3, latencies
        assert all(d.at < throttle_ends for d in fast.deliveries)  # all during A's throttle

        await eventually(lambda: len(slow.records) == 6, timeout_s=30, what="tenant A's notes")
        finished = time.monotonic() - started
        assert sorted(slow.records) == sorted({d.msg_id for d in slow.deliveries})
        assert len(slow.deliveries) == 6  # everything arrived once; nothing lost
        assert {d.payload["data"]["note_id"] for d in slow.deliveries} == {
            n.data.note_id for n in notes_a
        }
        refused = [at for at, status in slow.posts if status == 429]
        rounds = [refused[0]] + [t for p, t in itertools.pairwise(refused) if t - p > 0.5]
        gaps = [later - earlier for earlier, later in itertools.pairwise(rounds)]
        assert gaps, refused
        assert min(gaps) >= 1.9, gaps  # Retry-After: 2 honoured
        assert sorted(latencies)[len(latencies) // 2] < 1.0, latencies  # not held up by A
        assert max(latencies) < 3.0, latencies
        print(
            f"\n429 test: tenant A {len(refused)} x 429 in {len(rounds)} rounds, gaps "
            f"{min(gaps):.2f}-{max(gaps):.2f}s, all 6 delivered after {finished:.1f}s; "
            f"tenant B meanwhile: {len(latencies)} notes, latency median "
            f"{sorted(latencies)[len(latencies) // 2]:.2f}s, max {max(latencies):.2f}s"
        )
        log = await settled(crm, a, 6)
        assert all(t["status"] == "synced" for t in log)
        retried = [t for t in log if t["attempts"] > 1]
        assert retried
        assert all(
            e["status_code"] == 429 and e["will_retry"] for t in retried for e in t["log"][:-1]
        )
        failed = await collect_events(
            servers.kafka_bootstrap_servers, "crm.failed", tenant=a, expect=len(refused)
        )
        assert {(e.data.status_code, e.data.will_retry) for e in failed} == {(429, True)}


async def test_r_api_2_refused_credentials_hold_transfers_until_new_ones_arrive(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    hubspot = vendors.hubspot
    t, wrong, right = tenant(), token("hubspot-wrong"), token("hubspot")
    await publish(servers, tenant_changed(t))
    hubspot.tokens.add(right)
    assert (await put_connector(crm, "hubspot", t, credentials={"token": wrong})).status_code == 200
    await publish(servers, *(note_created(t) for _ in range(3)))

    def with_wrong_token() -> int:
        return sum(s.headers.get("authorization") == f"Bearer {wrong}" for s in hubspot.seen)

    async def needs_attention() -> bool:
        [c] = (await crm.get("/v1/connectors", headers=client(t))).json()
        return bool(c["status"] == "needs_attention")

    async def all_held() -> bool:
        log = await transfers(crm, t)
        held = [x for x in log if x["log"] and x["log"][-1]["outcome"] == "held"]
        return len(log) == 3 and bool(held) and all(x["status"] == "pending" for x in log)

    await eventually(needs_attention, what="needs_attention")
    await eventually(all_held, what="the attempts in flight to end")
    [connector] = (await crm.get("/v1/connectors", headers=client(t))).json()
    assert (connector["attention"], connector["last_status_code"]) == ("credentials_refused", 401)
    tried = with_wrong_token()
    await publish(servers, note_created(t))
    await asyncio.sleep(1.0)
    assert with_wrong_token() == tried  # transfers stopped
    assert all(x["status"] == "pending" for x in await transfers(crm, t))
    held = await collect_events(servers.kafka_bootstrap_servers, "crm.failed", tenant=t, expect=1)
    assert held[0].data.status_code == 401
    assert held[0].data.will_retry

    assert (await put_connector(crm, "hubspot", t, credentials={"token": right})).status_code == 200
    log = await settled(crm, t, 4)
    assert [x["status"] for x in log] == ["synced"] * 4


async def test_webhook_answering_410_disables_the_connector(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    receiver = WebhookReceiver(behaviour=lambda _: (410, {}, {"error": "gone"}))
    with serve(receiver.app()) as url:
        t = await webhook_tenant(crm, servers, receiver, url)
        await publish(servers, note_created(t))
        [transfer] = await settled(crm, t, 1)
        assert (transfer["status"], transfer["last_status_code"]) == ("failed", 410)
        [connector] = (await crm.get("/v1/connectors", headers=client(t))).json()
        assert (connector["status"], connector["disabled_reason"]) == ("disabled", "gone")
        await publish(servers, note_created(t))
        await asyncio.sleep(1.0)
        assert len(receiver.posts) == 1
        assert len(await transfers(crm, t)) == 1


async def test_r_api_2_dead_receiver_opens_the_circuit_then_everything_arrives(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    down = {"until": time.monotonic() + 3.0}
    receiver = WebhookReceiver(
        behaviour=lambda _: (
            (503, {}, {"error": "down"}) if time.monotonic() < down["until"] else None
        )
    )
    with serve(receiver.app()) as url:
        t = await webhook_tenant(crm, servers, receiver, url)
        await publish(servers, *(note_created(t) for _ in range(3)))

        async def circuit_open() -> bool:
            [c] = (await crm.get("/v1/connectors", headers=client(t))).json()
            return c["paused_until"] is not None

        await eventually(circuit_open, what="the circuit to open")
        log = await settled(crm, t, 3)
        assert [x["status"] for x in log] == ["synced"] * 3
        assert len(receiver.records) == 3
        assert any(e["status_code"] == 503 for x in log for e in x["log"])


async def test_other_4xx_fails_the_transfer_and_an_operator_can_retry_it(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    answers: list[Answer] = [(422, {}, {"error": "unexpected field"})]
    receiver = WebhookReceiver(behaviour=lambda _: answers.pop() if answers else None)
    with serve(receiver.app()) as url:
        t = await webhook_tenant(crm, servers, receiver, url)
        await publish(servers, note_created(t))
        [transfer] = await settled(crm, t, 1)
        assert (transfer["status"], transfer["attempts"], transfer["last_status_code"]) == (
            "failed",
            1,
            422,
        )
        path = f"/v1/transfers/{transfer['id']}/retry"
        assert (await crm.post(path, headers=client(t))).status_code == 403
        assert (
            await crm.post(path, headers=OPERATOR, params={"tenant_id": tenant()})
        ).status_code == 404
        reply = await crm.post(path, headers=OPERATOR, params={"tenant_id": t})
        assert reply.status_code == 202, reply.text
        await eventually(lambda: len(receiver.records) == 1, what="the retried transfer")
        assert (await crm.post(path, headers=OPERATOR, params={"tenant_id": t})).status_code in (
            409,
            202,
        )


async def test_r_sec_3_secrecy_bound_tenant_sends_nothing_until_it_opts_in(
    crm: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    receiver = WebhookReceiver()
    with serve(receiver.app()) as url:
        t = await webhook_tenant(crm, servers, receiver, url, secrecy_bound=True)
        await publish(servers, note_created(t))
        [transfer] = await settled(crm, t, 1)
        assert transfer["status"] == "refused"
        assert "R-SEC-3" in transfer["log"][0]["detail"]
        assert receiver.posts == []  # nothing left
        [refused] = await collect_events(
            servers.kafka_bootstrap_servers, "crm.failed", tenant=t, expect=1
        )
        assert refused.data.status_code is None
        assert not refused.data.will_retry

        reply = await put_connector(crm, "webhook", t, secrecy_opt_in=True)
        assert reply.status_code == 200
        assert reply.json()["secrecy_opt_in"] is True
        await publish(servers, note_created(t))
        await eventually(lambda: len(receiver.records) == 1, what="the note after opting in")


async def test_r_sec_5_destination_outside_the_eu_needs_a_recorded_safeguard(
    crm: httpx.AsyncClient, servers: ServerEndpoints, vendors: Vendors
) -> None:
    t, secret = tenant(), token("hubspot")
    vendors.hubspot.tokens.add(secret)
    await publish(servers, tenant_changed(t))
    for region in ("US", "GB", "CH"):
        reply = await put_connector(crm, "hubspot", t, credentials={"token": secret}, region=region)
        assert reply.status_code == 422
        assert reply.json()["detail"][0]["loc"] == ["body", "safeguard"]
    assert (await crm.get("/v1/connectors", headers=client(t))).json() == []
    reply = await put_connector(
        crm, "hubspot", t, credentials={"token": secret}, region="US", safeguard="scc"
    )
    assert reply.status_code == 200, reply.text
    assert (reply.json()["region"], reply.json()["safeguard"]) == ("US", "scc")
    reply = await put_connector(crm, "hubspot", t, region="US", safeguard=None)
    assert reply.status_code == 422  # the safeguard cannot be dropped while the region is US
    await publish(servers, note_created(t))
    [transfer] = await settled(crm, t, 1)
    assert transfer["status"] == "synced"
    [synced] = await collect_events(
        servers.kafka_bootstrap_servers, "crm.synced", tenant=t, expect=1
    )
    assert (synced.data.destination_region, synced.data.safeguard) == ("US", "scc")
    eea = await put_connector(crm, "pipedrive", t, credentials={"api_token": token()}, region="NO")
    assert eea.status_code == 200  # Norway is in the EEA: no safeguard needed

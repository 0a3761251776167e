"""Transient and permanent failures, withdrawals mid-flow, and the operator's retry."""

from __future__ import annotations

import asyncio
import time
from collections import deque

import httpx

from switchboard_contracts.tenants import Channel
from switchboard_notify.config import NotifySettings
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import collect_events

from ..support import (
    SmsGatewayServer,
    SmtpServer,
    address,
    eventually,
    new_tenant,
    note_created,
    publish,
    tenant_changed,
    twilio_error,
)


async def _ledger(client: httpx.AsyncClient, tenant: str, **params: str) -> list[dict[str, object]]:
    reply = await client.get(
        "/v1/deliveries", params=params, headers=auth_header("client", tenant=tenant)
    )
    assert reply.status_code == 200, reply.text
    items: list[dict[str, object]] = reply.json()["items"]
    return items


async def _settled(client: httpx.AsyncClient, tenant: str, status: str) -> list[dict[str, object]]:
    items = await _ledger(client, tenant)
    return items if items and all(i["status"] == status for i in items) else []


def _mobile(tenant: str) -> str:
    return "+49151" + str(int(tenant[2:], 16) % 10**8).zfill(8)


async def test_smtp_451_then_250_gives_one_mail_after_two_attempts(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    smtp.sink.script[to] = deque(["451 4.3.0 Mailbox busy, try again later"])
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, to, None)]),
        note_created(tenant),
    )
    [entry] = await eventually(lambda: _settled(notify, tenant, "sent"))
    assert smtp.sink.attempts[to] == 2
    assert len(smtp.sink.to(to)) == 1
    assert entry["attempts"] == 2
    # R-API-2: both attempts are announced, the failure with its (value-free) reason
    [failed] = await collect_events(
        servers.kafka_bootstrap_servers, "notification.failed", tenant=tenant, expect=1
    )
    assert (failed.data.error, failed.data.will_retry, failed.data.attempt) == (
        "smtp 451 4.3.0",
        True,
        1,
    )
    [sent] = await collect_events(
        servers.kafka_bootstrap_servers, "notification.sent", tenant=tenant, expect=1
    )
    assert sent.data.attempt == 2


async def test_a_send_never_outlasts_its_claim_it_is_cut_and_tried_again(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer, settings: NotifySettings
) -> None:
    """Each SMTP step stays within its own timeout, the whole send would not stay within the
    claim: it is cut at 0.8 of the lease (before another replica could claim it again)."""
    tenant = new_tenant()
    to = address(tenant)
    step = settings.smtp_timeout_s * 0.9  # RCPT and DATA each just within the timeout
    assert 2 * step > settings.send_lease_s * 0.8
    smtp.sink.slow[to] = step
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, to, None)]),
        note_created(tenant),
    )
    [failed] = await collect_events(
        servers.kafka_bootstrap_servers, "notification.failed", tenant=tenant, expect=1
    )
    assert (failed.data.error, failed.data.will_retry) == (
        "smtp send ran out of its claim's time",
        True,
    )
    [entry] = await eventually(lambda: _settled(notify, tenant, "sent"), timeout_s=30)
    assert entry["attempts"] == 2
    # the cut session had handed its message over already: a copy with the same Message-ID,
    # which is how a receiver recognises it (SMTP cannot tell whether the last step landed)
    assert {m.message_id for m in smtp.sink.to(to)} == {entry["message_id"]}


async def test_gateway_429_retry_after_is_honoured_without_holding_up_other_tenants(
    notify: httpx.AsyncClient,
    servers: ServerEndpoints,
    gateway: SmsGatewayServer,
    smtp: SmtpServer,
) -> None:
    tenant, other = new_tenant(), new_tenant()
    mobile = _mobile(tenant)
    gateway.script[mobile] = deque(
        [twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "2"})]
    )
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.SMS, mobile, None)]),
        note_created(tenant),
    )
    [first] = await eventually(lambda: gateway.to(mobile))
    # meanwhile another tenant's note goes out at once: nothing waits on the 429
    started = time.monotonic()
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(other, [(Channel.EMAIL, address(other), None)]),
        note_created(other),
    )
    await eventually(lambda: smtp.sink.to(address(other)))
    assert time.monotonic() - started < 1.5
    first_try, second_try = await eventually(
        lambda: gateway.to(mobile)[:2] if len(gateway.to(mobile)) >= 2 else None
    )
    assert second_try.at - first_try.at >= 2.0, "Retry-After: 2 must be honoured"
    assert first is first_try
    [entry] = await eventually(lambda: _settled(notify, tenant, "sent"))
    assert entry["attempts"] == 2


async def test_gateway_400_fails_at_once_without_retry(
    notify: httpx.AsyncClient, servers: ServerEndpoints, gateway: SmsGatewayServer
) -> None:
    tenant = new_tenant()
    mobile = _mobile(tenant)
    gateway.script[mobile] = deque(
        [twilio_error(400, 21211, f"The 'To' number {mobile} is not a valid phone number.")]
    )
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.SMS, mobile, None)]),
        note_created(tenant),
    )
    [entry] = await eventually(lambda: _settled(notify, tenant, "failed"))
    assert entry["attempts"] == 1
    assert entry["last_error"] == "twilio http 400 code 21211"  # never the vendor's message
    await asyncio.sleep(1.0)
    assert len(gateway.to(mobile)) == 1
    [failed] = await collect_events(
        servers.kafka_bootstrap_servers, "notification.failed", tenant=tenant, expect=1
    )
    assert failed.data.will_retry is False
    assert mobile not in failed.data.error

    # an operator retries it once the number is fixed at the gateway's end
    ident = entry["id"]
    client = auth_header("client", tenant=tenant)
    assert (await notify.post(f"/v1/deliveries/{ident}/retry", headers=client)).status_code == 403
    operator = auth_header("operator")
    reply = await notify.post(f"/v1/deliveries/{ident}/retry", headers=operator)
    assert reply.status_code == 202, reply.text
    assert reply.json()["status"] == "pending"
    [entry] = await eventually(lambda: _settled(notify, tenant, "sent"))
    assert entry["attempts"] == 2
    again = await notify.post(f"/v1/deliveries/{ident}/retry", headers=operator)
    assert again.status_code == 409
    missing = await notify.post("/v1/deliveries/nope/retry", headers=operator)
    assert missing.status_code == 404


async def test_r_con_2_withdrawal_mid_flow_suppresses_what_is_not_yet_sent(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> None:
    tenant = new_tenant()
    keeps, withdraws = address(tenant, "chef"), address(tenant, "empfang")
    smtp.sink.script[withdraws] = deque(["451 4.7.1 Greylisted, try again"] * 50)
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, keeps, None), (Channel.EMAIL, withdraws, None)]),
        note_created(tenant),
    )
    await eventually(lambda: smtp.sink.to(keeps) and smtp.sink.attempts[withdraws] >= 1)
    reply = await notify.post(
        "/v1/consents",
        headers=auth_header("client", tenant=tenant),
        json={
            "subject": withdraws.upper(),
            "purpose": "notification",
            "channel": "email",
            "status": "withdrawn",
            "method": "web_form",
            "text_version": "portal-consent-de-v2",
        },
    )
    assert reply.status_code == 201, reply.text
    smtp.sink.script[withdraws].clear()  # the server would accept it now
    [entry] = await eventually(lambda: _ledger(notify, tenant, status="suppressed"))
    assert entry["recipient"] == withdraws
    await publish(servers.kafka_bootstrap_servers, note_created(tenant))  # a later call
    await eventually(lambda: len(smtp.sink.to(keeps)) == 2)
    await asyncio.sleep(0.5)
    assert smtp.sink.to(withdraws) == []
    assert len(await _ledger(notify, tenant, status="suppressed")) == 2

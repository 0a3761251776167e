"""Onboarding → call → note → e-mail and SMS, over the real broker, database, SMTP and gateway."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import deque

import httpx
import pytest

from switchboard_contracts.tenants import Channel, ContractStatus, Industry
from switchboard_notify.config import NotifySettings
from switchboard_notify.domain import delivery_id
from switchboard_notify.sms_message import segments
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import collect_events

from ..conftest import SMS_FROM
from ..support import (
    CALLER,
    CONCERN,
    SmsGatewayServer,
    SmtpServer,
    address,
    eventually,
    new_tenant,
    note_created,
    note_deleted,
    publish,
    tenant_changed,
)


async def _deliveries(
    client: httpx.AsyncClient, tenant: str, **params: str
) -> list[dict[str, object]]:
    reply = await client.get(
        "/v1/deliveries", params=params, headers=auth_header("client", tenant=tenant)
    )
    assert reply.status_code == 200, reply.text
    items: list[dict[str, object]] = reply.json()["items"]
    return items


async def test_r_note_1_note_reaches_the_recipient_as_a_german_mime_mail_over_tls(
    notify: httpx.AsyncClient,
    servers: ServerEndpoints,
    smtp: SmtpServer,
    settings: NotifySettings,
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, to.upper(), "Frau Meyer")]),
    )
    note = note_created(tenant)
    await publish(servers.kafka_bootstrap_servers, note)

    [mail] = await eventually(lambda: smtp.sink.to(to))
    assert mail.tls, "STARTTLS must be used when the server offers it (R-NOTE-1)"
    assert mail.mail_from == "notiz@switchboard.example"
    message = mail.message
    assert message["To"] == to
    assert message["From"] == "Telefonservice <notiz@switchboard.example>"
    assert message["Subject"] == "Anruf von Erika Mustermann (ACME GmbH) für Frau Meyer"
    ident = delivery_id(note.data.note_id, Channel.EMAIL, to)
    assert message["Message-ID"] == f"<{ident}@switchboard.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "de"
    assert message["List-Unsubscribe"] is None  # marketing only
    assert message.get_content_type() == "multipart/alternative"
    text, html = mail.text(), mail.html()
    for body in (text, html):
        assert "Erika Mustermann" in body
        assert CONCERN in body
        assert "+49 1521 1014450" in body
        assert "Freitag, 14.03.2025, 10:30 Uhr" in body  # 09:30 UTC in Berlin (CET)
        assert f"https://portal.switchboard.example/notes/{note.data.note_id}" in body

    [entry] = await eventually(lambda: _sent(notify, tenant))
    assert entry["recipient"] == to
    assert entry["legal_basis"] == "consent"
    assert entry["attempts"] == 1
    assert entry["message_id"] == message["Message-ID"]
    assert "concern" not in entry
    assert "body" not in entry
    # R-API-2: the transfer is announced: what, to whom, when, on which basis, result
    [sent] = await collect_events(
        servers.kafka_bootstrap_servers, "notification.sent", tenant=tenant, expect=1
    )
    assert (sent.data.recipient, sent.data.legal_basis, sent.data.provider) == (
        to,
        "consent",
        "smtp",
    )
    assert sent.data.notification_id == ident
    # R-SEC-5: the processor carries its region, in the ledger and in the event
    assert (entry["provider_region"], entry["safeguard"]) == ("EU", None)
    assert (sent.data.provider_region, sent.data.safeguard) == ("EU", None)


async def _sent(client: httpx.AsyncClient, tenant: str) -> list[dict[str, object]]:
    items = await _deliveries(client, tenant)
    return items if items and all(i["status"] == "sent" for i in items) else []


async def test_r_note_1_sms_goes_to_the_normalised_number_within_two_segments(
    notify: httpx.AsyncClient, servers: ServerEndpoints, gateway: SmsGatewayServer
) -> None:
    tenant = new_tenant()
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.SMS, "0151 1234 5678", "Herr Weber")]),
        note_created(tenant, concern="Heizung ausgefallen, bitte dringend zurückrufen. " * 12),
    )
    [request] = await eventually(lambda: gateway.to("+4915112345678"))
    assert request.vendor == "twilio"
    assert request.fields["From"] == SMS_FROM
    body = str(request.fields["Body"])
    assert CALLER.phone in body  # the callback number is never cut
    assert "für Frau Meyer" in body  # the contact person the caller asked for
    assert body.endswith("...")  # the concern is
    assert segments(body) <= 2
    [entry] = await eventually(lambda: _sent(notify, tenant))
    assert str(entry["provider_message_id"]).startswith("SM")
    # R-SEC-5: Twilio processes in the US (its default region), under the safeguard the
    # test configuration documents; production refuses it without one
    assert (entry["provider_region"], entry["safeguard"]) == ("US", "scc")


async def test_terminated_tenant_gets_nothing(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, to, None)], status=ContractStatus.TERMINATED),
        note_created(tenant),
    )
    [entry] = await eventually(lambda: _deliveries(notify, tenant))
    assert (entry["status"], entry["reason"]) == ("cancelled", "contract terminated")
    await asyncio.sleep(0.5)
    assert smtp.sink.to(to) == []


@pytest.mark.parametrize("industry", [Industry.LAW, Industry.MEDICINE])
async def test_r_sec_3_secrecy_bound_tenant_gets_no_caller_and_no_concern(
    notify: httpx.AsyncClient,
    servers: ServerEndpoints,
    smtp: SmtpServer,
    gateway: SmsGatewayServer,
    industry: Industry,
) -> None:
    tenant = new_tenant()
    to, mobile = address(tenant), f"+49151{uuid.uuid4().int % 10**8:08d}"
    note = note_created(tenant)
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(
            tenant,
            [(Channel.EMAIL, to, "Dr. Weber"), (Channel.SMS, mobile, None)],
            industry=industry,
        ),
        note,
    )
    [mail] = await eventually(lambda: smtp.sink.to(to))
    [sms] = await eventually(lambda: gateway.to(mobile))
    raw = mail.data.decode()
    for secret in ("Erika", "Mustermann", "ACME", "Steuererklärung", "Rückruf wegen", "1014450"):
        assert secret not in mail.text()
        assert secret not in mail.html()
        assert secret not in str(mail.message["Subject"])
        assert secret not in raw
        assert secret not in str(sms.fields["Body"])
    assert mail.message["Subject"] == "Neuer Anruf für Frau Meyer"
    link = f"https://portal.switchboard.example/notes/{note.data.note_id}"
    assert link in mail.text()
    assert link in str(sms.fields["Body"])
    assert "Freitag, 14.03.2025, 10:30 Uhr" in mail.text()


async def test_redelivered_note_created_sends_one_mail(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    note = note_created(tenant)
    await publish(
        servers.kafka_bootstrap_servers, tenant_changed(tenant, [(Channel.EMAIL, to, None)])
    )
    await publish(servers.kafka_bootstrap_servers, note, note, note)
    await eventually(lambda: smtp.sink.to(to))
    await publish(servers.kafka_bootstrap_servers, note)  # once more, after it was sent
    marker = note_created(tenant)
    await publish(servers.kafka_bootstrap_servers, marker)  # same partition: after the repeats
    await eventually(lambda: len(smtp.sink.to(to)) >= 2)
    await asyncio.sleep(0.3)
    ids = [m.message["Message-ID"] for m in smtp.sink.to(to)]
    assert len(ids) == 2
    assert len(set(ids)) == 2
    assert len(await _deliveries(notify, tenant)) == 2


async def test_note_before_its_tenant_is_sent_once_the_tenant_is_known(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    await publish(servers.kafka_bootstrap_servers, note_created(tenant))
    await asyncio.sleep(0.5)
    await publish(
        servers.kafka_bootstrap_servers, tenant_changed(tenant, [(Channel.EMAIL, to, None)])
    )
    await eventually(lambda: smtp.sink.to(to))


async def test_deleted_note_is_not_sent_any_more(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    smtp.sink.script[to] = deque(["451 4.3.0 Try again later"] * 100)
    note = note_created(tenant)
    await publish(
        servers.kafka_bootstrap_servers, tenant_changed(tenant, [(Channel.EMAIL, to, None)]), note
    )
    await eventually(lambda: smtp.sink.attempts[to] >= 1)
    await publish(servers.kafka_bootstrap_servers, note_deleted(tenant, note.data.note_id))
    [entry] = await eventually(
        lambda: _deliveries(notify, tenant, status="cancelled"), timeout_s=10
    )
    assert entry["reason"] == "note deleted"
    smtp.sink.script[to].clear()
    await asyncio.sleep(1.5)
    assert smtp.sink.to(to) == []
    assert re.fullmatch(r"smtp 451 4\.3\.0", str(entry["last_error"]))

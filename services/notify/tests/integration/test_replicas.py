"""Two notify replicas over one database and consumer group (issue 7 §2, decision 0011).

They share the `note.created` partitions and the delivery ledger; claims decide who sends.
Every note reaches its recipient exactly once: no mail lost, none sent by both.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from switchboard_contracts.tenants import Channel
from switchboard_notify.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

from ..conftest import notify_settings
from ..support import (
    SmsGatewayServer,
    SmtpServer,
    address,
    eventually,
    new_tenant,
    note_created,
    publish,
    tenant_changed,
)

NOTES = 30


async def test_r_note_1_two_replicas_send_each_note_exactly_once(
    servers: ServerEndpoints,
    smtp: SmtpServer,
    gateway: SmsGatewayServer,
    tls_files: tuple[Path, Path],
) -> None:
    first = notify_settings(servers, smtp, gateway, tls_files)
    second = first.model_copy(update={"sender_instance": f"{first.sender_instance}-b"})
    tenants = [new_tenant() for _ in range(3)]
    async with running_app(create_app(first)), running_app(create_app(second)):
        for tenant in tenants:
            recipients = [(Channel.EMAIL, address(tenant), None)]
            await publish(servers.kafka_bootstrap_servers, tenant_changed(tenant, recipients))
        notes = [note_created(tenants[i % len(tenants)]) for i in range(NOTES)]
        await publish(servers.kafka_bootstrap_servers, *notes)

        def delivered() -> int:
            return sum(len(smtp.sink.to(address(t))) for t in tenants)

        await eventually(lambda: delivered() >= NOTES, timeout_s=60)
        await asyncio.sleep(1.0)  # a mail sent twice would arrive about now
        mails = [m for t in tenants for m in smtp.sink.to(address(t))]
    ids = [m.message["Message-ID"] for m in mails]
    assert len(ids) == NOTES, f"{len(ids)} mails for {NOTES} notes"
    assert len(set(ids)) == NOTES, "a note was mailed twice"

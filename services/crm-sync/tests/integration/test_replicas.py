"""Two crm-sync replicas over one database and consumer group (issue 7 §2, decision 0012).

They share the `note.created` partitions and the transfers collection; a transfer is sent
by the replica that claimed it, and the other one skips it. Every note reaches the
tenant's CRM exactly once: none lost, none posted by both.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from switchboard_crm_sync.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

from .conftest import Vendors, crm_settings
from .helpers import (
    SECRETS,
    eventually,
    note_created,
    publish,
    put_connector,
    settled,
    tenant_changed,
)
from .helpers import tenant as new_tenant
from .vendors import WebhookReceiver, serve

NOTES_PER_TENANT = 12


async def test_r_api_1_two_replicas_post_each_note_to_the_crm_exactly_once(
    servers: ServerEndpoints, vendors: Vendors
) -> None:
    settings = crm_settings(servers, vendors)
    receivers = [WebhookReceiver() for _ in range(3)]
    with (
        serve(receivers[0].app()) as a,
        serve(receivers[1].app()) as b,
        serve(receivers[2].app()) as c,
    ):
        async with running_app(create_app(settings)) as first, running_app(create_app(settings)):
            tenants = []
            for receiver, url in zip(receivers, (a, b, c), strict=True):
                t = new_tenant()
                await publish(servers, tenant_changed(t))
                reply = await put_connector(first, "webhook", t, credentials={"url": url})
                assert reply.status_code == 200, reply.text
                receiver.secret = reply.json()["secret"]
                SECRETS.append(receiver.secret)
                tenants.append(t)
            notes = {t: [note_created(t) for _ in range(NOTES_PER_TENANT)] for t in tenants}
            interleaved = [n for batch in zip(*notes.values(), strict=True) for n in batch]
            await publish(servers, *interleaved)

            def delivered() -> int:
                return sum(len(r.deliveries) for r in receivers)

            await eventually(
                lambda: delivered() >= NOTES_PER_TENANT * len(tenants),
                timeout_s=60,
                what="every note delivered",
            )
            await asyncio.sleep(1.0)  # a transfer sent by both would arrive about now
            logs = [await settled(first, t, NOTES_PER_TENANT) for t in tenants]

    for t, receiver, log in zip(tenants, receivers, logs, strict=True):
        posted = Counter(d.msg_id for d in receiver.deliveries)
        assert len(posted) == NOTES_PER_TENANT, f"{len(posted)} notes reached the CRM"
        assert max(posted.values()) == 1, "a note was posted twice"
        assert {d.payload["data"]["note_id"] for d in receiver.deliveries} == {
            n.data.note_id for n in notes[t]
        }
        assert sorted(x["status"] for x in log) == ["synced"] * NOTES_PER_TENANT
        assert receiver.bad_signatures == 0

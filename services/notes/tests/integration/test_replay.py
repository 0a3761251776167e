"""Replaying `call.received` from offset 0 changes nothing (issue 3 §1)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from switchboard_contracts.calls import CallReceived
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.calls import call_record, received_call
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import collect_events


async def _publish(servers: ServerEndpoints, call: CallReceived) -> None:
    await produce(servers.kafka_bootstrap_servers, [call_record(call)])


async def _note_ids(client: httpx.AsyncClient, tenant: str) -> set[str]:
    reply = await client.get(
        "/v1/notes", params={"limit": 200}, headers=auth_header("client", tenant=tenant)
    )
    return {str(n["call_id"]) for n in reply.json()["items"]}


async def _until_notes(
    client: httpx.AsyncClient, tenant: str, wanted: set[str], timeout_s: float = 30
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not wanted <= await _note_ids(client, tenant):
        assert asyncio.get_running_loop().time() < deadline, "notes did not arrive"
        await asyncio.sleep(0.1)


async def test_replaying_call_received_from_offset_zero_changes_nothing(
    servers: ServerEndpoints,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    database = f"notes_replay_{uuid.uuid4().hex[:8]}"
    calls = [received_call(tenant, n) for n in range(1, 6)]
    async with running_app(create_app(service_settings(NotesSettings, servers, database))) as app:
        for call in calls:
            await _publish(servers, call)
        await _until_notes(app, tenant, {c.call_id for c in calls})
        [deleted] = [
            n
            for n in (
                await app.get("/v1/notes", headers=auth_header("client", tenant=tenant))
            ).json()["items"]
            if n["call_id"] == calls[0].call_id
        ]
        reply = await app.delete(
            f"/v1/notes/{deleted['id']}", headers=auth_header("client", tenant=tenant)
        )
        assert reply.status_code == 204

    # a new consumer group reads call.received from offset 0: every event again
    replay = service_settings(
        NotesSettings, servers, database, kafka_consumer_group_prefix=f"replay-{uuid.uuid4().hex}"
    )
    marker = received_call(tenant, 0)
    async with running_app(create_app(replay)) as app:
        await _publish(servers, marker)
        # same tenant, same partition: once the marker is a note, the replay passed the rest
        await _until_notes(app, tenant, {marker.call_id})
        remaining = await _note_ids(app, tenant)

    assert remaining == {c.call_id for c in calls[1:]} | {marker.call_id}  # deleted stays deleted
    created = await collect_events(
        servers.kafka_bootstrap_servers, "note.created", tenant=tenant, expect=6, settle_s=1.0
    )
    assert sorted(e.data.call_id for e in created) == sorted(c.call_id for c in [*calls, marker])

"""A service started while Kafka or MongoDB is down serves `/healthz`, reports what is missing
in `/readyz`, and becomes ready by itself when the server comes back (issue 12 §4): a pod
restarted during an outage waits instead of crash-looping.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo, free_port
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.calls import call_record, received_call
from switchboard_platform.testing.kafka import produce, start_groups_at_log_end
from switchboard_platform.testing.polling import eventually
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings

GRACE_S = 20.0
"""A shutdown this test allows: the timeouts it is made of, with room for a loaded machine
(deploy/k8s gives notes 60 s)."""


async def _until_ready(client: httpx.AsyncClient, timeout_s: float = 45.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (reply := await client.get("/readyz")).status_code != 200:
        assert loop.time() < deadline, reply.text
        await asyncio.sleep(0.2)


async def test_started_without_kafka_it_serves_health_and_gets_ready_when_kafka_comes(
    servers: ServerEndpoints,
) -> None:
    port = free_port()
    settings = service_settings(
        NotesSettings,
        servers,
        f"notes_nokafka_{uuid.uuid4().hex[:8]}",
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
    )
    async with running_app(create_app(settings), wait_ready=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        await asyncio.sleep(1.0)
        reply = await client.get("/readyz")
        assert reply.status_code == 503
        assert reply.json()["checks"]["kafka"] != "ok"
        assert (await client.get("/readyz", params={"scope": "http"})).status_code == 200
        kafka = EmbeddedKafka(port=port, topics=ALL_TOPICS)
        await asyncio.to_thread(kafka.start)
        try:
            await _until_ready(client)
        finally:
            await asyncio.to_thread(kafka.stop)


async def test_started_without_mongodb_it_serves_health_and_gets_ready_when_mongodb_comes(
    servers: ServerEndpoints,
) -> None:
    port = free_port()
    settings = service_settings(
        NotesSettings,
        servers,
        f"notes_nomongo_{uuid.uuid4().hex[:8]}",
        mongodb_url=f"mongodb://127.0.0.1:{port}/?directConnection=true",
    )
    async with running_app(create_app(settings), wait_ready=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        reply = await client.get("/readyz", params={"scope": "http"})
        assert reply.status_code == 503
        # what is missing is MongoDB, and /readyz says so: Kafka is reached meanwhile
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (checks := (await client.get("/readyz")).json()["checks"])["kafka"] != "ok":
            assert loop.time() < deadline, checks
            await asyncio.sleep(0.2)
        assert checks["mongodb"] != "ok"
        mongo = EmbeddedMongo(port=port)
        await asyncio.to_thread(mongo.start)
        try:
            await _until_ready(client)
        finally:
            await asyncio.to_thread(mongo.stop)


async def test_stopped_during_a_mongodb_outage_with_events_in_hand_it_shuts_down_in_time(
    servers: ServerEndpoints, tmp_path: Path
) -> None:
    """A rolling update during an outage: notes was working through a backlog when MongoDB
    went away. Its shutdown neither waits for records it cannot finish nor for events it
    cannot flush (the records are uncommitted, the events stored: both come again), so it
    ends within `GRACE_S`; restarted once MongoDB is back, it has one note for each call.
    Before, it waited 15 s for the topic's records in hand and then the relay and the
    client waited out server selections: 25 s here, over 30 s in a CI run (`TimeoutError`).
    What is left is bounded by timeouts: a MongoDB operation's connect timeout (3 s), the
    lease's release (1 s), the client's close (1 s), leaving the groups (2 s)."""
    port = free_port()
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    database = f"notes_outage_{uuid.uuid4().hex[:8]}"
    settings = service_settings(
        NotesSettings,
        servers,
        database,
        mongodb_url=f"mongodb://127.0.0.1:{port}/?directConnection=true",
        kafka_consumer_group_prefix=prefix,
    )
    app = create_app(settings)
    # every group at the end of the shared topics: the backlog is the test's own
    await start_groups_at_log_end(
        servers.kafka_bootstrap_servers, app.state.runtime.subscriptions()
    )
    mongo = EmbeddedMongo(port=port, data_dir=tmp_path / "mongo")  # kept across its restart
    await asyncio.to_thread(mongo.start)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    calls = [received_call(tenant, n) for n in range(300)]
    try:
        async with running_app(app, shutdown_timeout_s=GRACE_S):
            await produce(servers.kafka_bootstrap_servers, [call_record(c) for c in calls])
            stored = await _wait_for_notes(mongo.url, database, at_least=5)
            assert stored < 300, "the outage must come while the backlog is in hand"
            await asyncio.to_thread(mongo.stop)  # the outage; then the shutdown
        # MongoDB back, the service restarted: what was cancelled in hand comes again
        await asyncio.to_thread(mongo.start)
        async with running_app(create_app(settings)):
            await _wait_for_notes(mongo.url, database, at_least=300)
        observer = AsyncMongoClient[dict[str, Any]](mongo.url)
        try:
            kept = await observer[database].notes.distinct("call_id")
        finally:
            await observer.close()
        assert sorted(kept) == sorted(c.call_id for c in calls), "each call one note"
    finally:
        await asyncio.to_thread(mongo.stop)


async def _wait_for_notes(url: str, database: str, *, at_least: int) -> int:
    """How many notes are stored, once at least `at_least` are (fails after 60 s)."""
    observer = AsyncMongoClient[dict[str, Any]](url)
    try:
        notes = observer[database].notes

        async def stored() -> int | None:
            count: int = await notes.count_documents({})
            return count if count >= at_least else None

        return await eventually(stored, timeout_s=60, every_s=0.05)
    finally:
        await observer.close()

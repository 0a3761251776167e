"""A service started while Kafka or MongoDB is down serves `/healthz`, reports what is missing
in `/readyz`, and becomes ready by itself when the server comes back (issue 12 §4): a pod
restarted during an outage waits instead of crash-looping.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from switchboard_contracts.calls import CallReceived
from switchboard_contracts.topics import ALL_TOPICS
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo, free_port
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.calls import call_record, received_call
from switchboard_platform.testing.kafka import produce, start_groups_at_log_end
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
    servers: ServerEndpoints,
) -> None:
    """A rolling update during an outage: notes was working through a backlog when MongoDB
    went away. Its shutdown neither waits for records it cannot finish nor for events it
    cannot flush (the records are uncommitted, the events stored: both come again), so it
    ends within `GRACE_S`. Before, it waited 15 s for the topic's records in hand, then the
    relay's 10 s flush deadline: 25 s here, over 30 s in a CI run (`TimeoutError`). What is
    left is bounded by timeouts: a MongoDB operation's connect timeout (3 s), the lease's
    release (1 s), the client's close (1 s), each consumer leaving its group (2 s)."""
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
    await start_groups_at_log_end(
        servers.kafka_bootstrap_servers, [(CallReceived.topic, f"{prefix}.{CallReceived.topic}")]
    )
    mongo = EmbeddedMongo(port=port)
    await asyncio.to_thread(mongo.start)
    try:
        async with running_app(create_app(settings), shutdown_timeout_s=GRACE_S):
            tenant = f"t-{uuid.uuid4().hex[:8]}"
            await produce(
                servers.kafka_bootstrap_servers,
                [call_record(received_call(tenant, n)) for n in range(300)],
            )
            observer = AsyncMongoClient[dict[str, Any]](mongo.url)
            try:
                notes = observer[database].notes
                while (stored := await notes.count_documents({})) < 5:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # the backlog is being worked through
            finally:
                await observer.close()
            assert stored < 300, "the outage must come while the backlog is in hand"
            await asyncio.to_thread(mongo.stop)  # the outage; then the shutdown
    finally:
        await asyncio.to_thread(mongo.stop)

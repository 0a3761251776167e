"""A service started while Kafka or MongoDB is down serves `/healthz`, reports what is missing
in `/readyz`, and becomes ready by itself when the server comes back (issue 12 §4): a pod
restarted during an outage waits instead of crash-looping.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo, free_port
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings


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

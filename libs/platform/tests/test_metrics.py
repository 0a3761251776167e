"""`GET /metrics` of a real notes app: consumed, dead-lettered, handler time, outbox, HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from switchboard_contracts import encode, make_event
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.samples import sample_payload
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header

Snapshot = dict[tuple[str, frozenset[tuple[str, str]]], float]
CALL = {"service": "notes", "topic": "call.received"}


@pytest.fixture(scope="module")
async def notes(servers: ServerEndpoints) -> AsyncIterator[httpx.AsyncClient]:
    """A running notes app whose consumer has caught up with what is already on the topic."""
    settings = service_settings(
        NotesSettings,
        servers,
        f"notes_metrics_{uuid.uuid4().hex[:8]}",
        mongodb_command_metrics=True,
        outbox_poll_interval_s=300.0,  # the relay reads on wake-ups only: countable
    )
    async with running_app(create_app(settings)) as client:
        await _publish_call(servers, tenant := f"t-{uuid.uuid4().hex[:8]}")
        await _wait_for_note(client, tenant)
        await _settled(client)
        yield client


async def scrape(client: httpx.AsyncClient) -> Snapshot:
    """Every sample `/metrics` exposes, by name and labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(snapshot: Snapshot, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return snapshot.get((name, frozenset(labels.items())), 0.0)


async def _settled(client: httpx.AsyncClient) -> Snapshot:
    """Scrape until the message counters stop moving: earlier tests' records are consumed."""
    names = ("switchboard_messages_consumed_total", "switchboard_messages_dead_lettered_total")

    def counters(s: Snapshot) -> Snapshot:
        return {k: v for k, v in s.items() if k[0] in names}

    previous = await scrape(client)
    for _ in range(50):
        await asyncio.sleep(0.3)
        current = await scrape(client)
        if counters(current) == counters(previous):
            return current
        previous = current
    raise AssertionError("consumer never went quiet")


async def _until(
    client: httpx.AsyncClient, done: Callable[[Snapshot], bool], timeout_s: float = 15.0
) -> Snapshot:
    async with asyncio.timeout(timeout_s):
        while True:
            if done(snapshot := await scrape(client)):
                return snapshot
            await asyncio.sleep(0.05)


async def _produce(
    servers: ServerEndpoints, value_: bytes, key: bytes, headers: dict[str, str]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            "call.received", value_, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )
    finally:
        await producer.stop()


async def _publish_call(servers: ServerEndpoints, tenant: str) -> None:
    payload = sample_payload(CallReceived, tenant_id=tenant, call_id=uuid.uuid4().hex)
    record = encode(make_event(payload, tenant_id=tenant, source="/test"))
    await _produce(servers, record.value, record.key, record.headers)


async def _wait_for_note(client: httpx.AsyncClient, tenant: str) -> str:
    headers = auth_header("client", tenant=tenant)
    async with asyncio.timeout(20.0):
        while True:
            if items := (await client.get("/v1/notes", headers=headers)).json()["items"]:
                note_id: str = items[0]["id"]
                return note_id
            await asyncio.sleep(0.05)


async def test_a_handled_call_received_is_counted_as_consumed_and_timed(
    notes: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    before = await _settled(notes)
    await _publish_call(servers, tenant := f"t-{uuid.uuid4().hex[:8]}")
    await _wait_for_note(notes, tenant)
    after = await _until(
        notes,
        lambda s: (
            value(s, "switchboard_messages_consumed_total", **CALL)
            > value(before, "switchboard_messages_consumed_total", **CALL)
        ),
    )
    for name in (
        "switchboard_messages_consumed_total",
        "switchboard_handler_duration_seconds_count",
    ):
        assert value(after, name, **CALL) - value(before, name, **CALL) == 1, name
    assert value(after, "switchboard_handler_duration_seconds_sum", **CALL) > value(
        before, "switchboard_handler_duration_seconds_sum", **CALL
    )
    dead = "switchboard_messages_dead_lettered_total"
    assert value(after, dead, **CALL, reason="malformed") == value(
        before, dead, **CALL, reason="malformed"
    )


async def test_garbage_on_call_received_is_counted_as_dead_lettered(
    notes: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    name = "switchboard_messages_dead_lettered_total"
    before = await _settled(notes)
    await _produce(servers, b"\x00\xffnot an event", f"garbage-{uuid.uuid4().hex}".encode(), {})
    after = await _until(
        notes,
        lambda s: (
            value(s, name, **CALL, reason="malformed")
            > value(before, name, **CALL, reason="malformed")
        ),
    )
    await asyncio.sleep(0.3)  # a second increment would be a bug; give it the chance to show
    after = await scrape(notes)
    assert (
        value(after, name, **CALL, reason="malformed")
        - value(before, name, **CALL, reason="malformed")
        == 1
    )
    consumed = "switchboard_messages_consumed_total"
    assert value(after, consumed, **CALL) == value(before, consumed, **CALL)


async def test_outbox_backlog_drains_to_zero_once_note_created_is_published(
    notes: httpx.AsyncClient,
) -> None:
    backlog = ("switchboard_outbox_pending_events", frozenset({("service", "notes")}))
    after = await _until(notes, lambda s: s.get(backlog) == 0)
    published = "switchboard_outbox_published_total"
    assert value(after, published, service="notes", topic="note.created") >= 1


async def test_http_requests_are_counted_and_timed_per_route_template(
    notes: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    before = await scrape(notes)
    headers = auth_header("client", tenant="t-nobody")
    missing = f"/v1/notes/{uuid.uuid4()}"
    assert (await notes.get(missing, headers=headers)).status_code == 404
    after = await scrape(notes)
    labels = {"service": "notes", "method": "GET", "route": "/v1/notes/{note_id}"}
    requests = "switchboard_http_requests_total"
    assert (
        value(after, requests, **labels, status="404")
        - value(before, requests, **labels, status="404")
        == 1
    )
    duration = "switchboard_http_request_duration_seconds_count"
    assert value(after, duration, **labels) - value(before, duration, **labels) == 1
    assert not [key for key in after if ("route", missing) in key[1]]


async def test_database_commands_are_counted_by_command_and_collection(
    notes: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    """A call costs notes one insert of its note, and the relay's read and clearing write
    of the notes collection only: not a read of every outbox collection of the service
    (`retention_answers` too, before wake-ups named their collection)."""
    name = "switchboard_db_commands_total"

    def commands(s: Snapshot, command: str, collection: str) -> float:
        return value(s, name, service="notes", command=command, collection=collection)

    before = await _settled(notes)
    await _publish_call(servers, tenant := f"t-{uuid.uuid4().hex[:8]}")
    await _wait_for_note(notes, tenant)
    after = await _until(
        notes, lambda s: commands(s, "update", "notes") > commands(before, "update", "notes")
    )
    assert commands(after, "insert", "notes") - commands(before, "insert", "notes") == 1
    assert commands(after, "find", "notes") - commands(before, "find", "notes") >= 2  # relay, API
    assert commands(after, "find", "retention_answers") == commands(
        before, "find", "retention_answers"
    )

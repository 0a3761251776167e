"""The transactional outbox over the real broker and database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from switchboard_contracts import Event, make_event
from switchboard_contracts.notes import NoteRated
from switchboard_contracts.samples import sample_payload
from switchboard_platform.embedded import EmbeddedKafka
from switchboard_platform.kafka import Producer
from switchboard_platform.mongo import MongoDatabase, create_mongo_client
from switchboard_platform.outbox import SINCE, merge_updates, outbox_update, with_outbox
from switchboard_platform.outbox_relay import OutboxRelay
from switchboard_platform.settings import ServiceSettings
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.topics import collect_events


def _rated(tenant: str, score: int) -> Event[NoteRated]:
    payload = sample_payload(NoteRated, tenant_id=tenant, score=score)
    return make_event(payload, tenant_id=tenant, source="/test")


@pytest.fixture
async def db(servers: ServerEndpoints) -> AsyncIterator[MongoDatabase]:
    client = create_mongo_client(servers.mongodb_url, app_name="outbox-test")
    yield client[f"outbox_{uuid.uuid4().hex[:8]}"]
    await client.close()


async def _broker(bootstrap: str) -> Producer:
    settings = ServiceSettings(environment="test", kafka_bootstrap_servers=bootstrap)
    broker = Producer(settings, client_id="outbox-test", request_timeout_ms=1000)
    await broker.start()
    return broker


async def test_relay_publishes_pending_events_in_write_order_and_clears_them(
    db: MongoDatabase, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = [_rated(tenant, score) for score in (1, 2, 3, 4, 5)]
    # interleave two collections and two appends to one document
    await db.a.insert_one(with_outbox({"_id": "x"}, [events[0]]))
    await db.b.insert_one(with_outbox({"_id": "y"}, [events[1]]))
    await db.a.update_one(
        {"_id": "x"}, merge_updates({"$set": {"v": 1}}, outbox_update([events[2]]))
    )
    await db.b.insert_one(with_outbox({"_id": "z"}, [events[3], events[4]]))
    broker = await _broker(servers.kafka_bootstrap_servers)
    try:
        relay = OutboxRelay(db, ["a", "b"], service="test", broker=broker)
        assert await relay.drain_once() == (5, False)
        assert await relay.drain_once() == (0, False)
    finally:
        await broker.stop()
    published = await collect_events(
        servers.kafka_bootstrap_servers, "note.rated", tenant=tenant, expect=5, settle_s=0.5
    )
    assert [e.id for e in published] == [e.id for e in events]
    for collection in (db.a, db.b):
        async for doc in collection.find():
            assert doc["_outbox"] == []
            assert SINCE not in doc


async def test_events_written_while_the_broker_is_down_are_kept_and_sent_when_it_returns(
    db: MongoDatabase,
) -> None:
    """Writes go on without Kafka; the relay delivers once the broker is back (issue 3 §1)."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    # the topic is created as part of every start: were it created a moment later, a record
    # the relay sends in between would land in a topic the embedded broker then replaces
    kafka = EmbeddedKafka(topics=["note.rated"]).start()
    try:
        broker = await _broker(kafka.bootstrap_servers)
        relay = OutboxRelay(
            db, ["a"], service="test", broker=broker, poll_interval_s=0.1, publish_timeout_s=1.5
        )
        relay.start()
        kafka.stop()
        events = [_rated(tenant, s) for s in (1, 2, 3)]
        for i, event in enumerate(events):
            await db.a.insert_one(with_outbox({"_id": i}, [event]))  # the API's write succeeds
            relay.notify("a")
        await asyncio.sleep(2.5)  # past one publish timeout
        assert not relay.healthy
        assert await db.a.count_documents({SINCE: {"$exists": True}}) == 3
        kafka.start()  # same port, empty memory: the topic is created again
        published = await collect_events(
            kafka.bootstrap_servers, "note.rated", tenant=tenant, expect=3, timeout_s=30, settle_s=1
        )
        # at-least-once: sends buffered before the outage may arrive besides the relay's retry,
        # so duplicates are allowed (consumers are idempotent), losses and reordering are not
        first_seen = list(dict.fromkeys(e.id for e in published))
        assert first_seen == [e.id for e in events]
        await relay.stop()
        await broker.stop()
        assert await db.a.count_documents({SINCE: {"$exists": True}}) == 0
    finally:
        kafka.stop()

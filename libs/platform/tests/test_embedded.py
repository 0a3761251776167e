"""The embedded servers and the session fixtures speak the real protocols to the real clients."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pymongo import AsyncMongoClient

from switchboard_contracts.topics import ALL_TOPICS, topic_config
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo, EmbeddedServerError
from switchboard_platform.kafka_admin import ensure_topics
from switchboard_platform.testing.pytest_plugin import ServerEndpoints


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"tenant-1", headers=[("ce_id", b"1")])
    finally:
        await producer.stop()


async def _first_record(bootstrap: str, topic: str, *, group: bool = False) -> ConsumerRecord:
    """Read the topic's first record, through a consumer group or by partition assignment."""
    consumer = AIOKafkaConsumer(
        *([topic] if group else []),
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex}" if group else None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        # Tansu holds a group's first JoinGroup for half the session timeout; 6 s is the
        # lowest that real Kafka accepts by default (group.min.session.timeout.ms).
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    await consumer.start()
    try:
        if not group:
            partitions = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, p) for p in partitions])
        return await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()


async def _round_trip(bootstrap: str, topic: str, value: bytes, *, group: bool = False) -> bytes:
    """Produce one record and read it back with its key and headers."""
    await _produce(bootstrap, topic, value)
    record = await _first_record(bootstrap, topic, group=group)
    assert record.key == b"tenant-1"
    assert record.headers == (("ce_id", b"1"),)
    return bytes(record.value)


async def _partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_session_broker_has_every_contract_topic(servers: ServerEndpoints) -> None:
    assert set(ALL_TOPICS) <= await _topics(servers.kafka_bootstrap_servers)


async def test_r_ret_1_the_broker_keeps_each_topic_no_longer_than_its_contract(
    servers: ServerEndpoints,
) -> None:
    """`retention.ms`, the daily `segment.ms` and the delete policy reach the broker itself."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap_servers)
    await admin.start()
    try:
        topics = ("call.received", "tenant.changed.dlq", "crm.failed")
        answers = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
    finally:
        await admin.close()
    held = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for answer in answers
        for resource in answer.resources
    }
    for topic in topics:
        assert topic_config(topic).items() <= held[topic].items(), topic


async def test_message_round_trips_through_the_broker(servers: ServerEndpoints) -> None:
    topic = f"test.round-trip.{uuid.uuid4().hex[:8]}"
    await ensure_topics(servers.kafka_bootstrap_servers, [topic])
    value = await _round_trip(servers.kafka_bootstrap_servers, topic, b'{"n": 1}', group=True)
    assert value == b'{"n": 1}'


async def test_ensure_topics_is_idempotent(servers: ServerEndpoints) -> None:
    topics = [f"test.idempotent.{uuid.uuid4().hex[:8]}", f"test.idempotent.{uuid.uuid4().hex[:8]}"]
    await ensure_topics(servers.kafka_bootstrap_servers, topics[:1], partitions=4)
    await ensure_topics(servers.kafka_bootstrap_servers, topics, partitions=4)
    await ensure_topics(servers.kafka_bootstrap_servers, topics, partitions=2)
    counts = await _partition_counts(servers.kafka_bootstrap_servers, topics)
    assert counts == dict.fromkeys(topics, 4)


async def test_mongo_insert_and_find(servers: ServerEndpoints, mongo_db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_url)
    try:
        notes = client[f"notes_{mongo_db_name}"]["notes"]
        await notes.insert_one({"_id": "n1", "tenant_id": "t1", "concern": "callback"})
        found = await notes.find_one({"tenant_id": "t1"})
    finally:
        await client.close()
    assert found == {"_id": "n1", "tenant_id": "t1", "concern": "callback"}


async def test_mongo_databases_are_isolated(servers: ServerEndpoints, mongo_db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_url)
    try:
        first, second = client[f"a_{mongo_db_name}"], client[f"b_{mongo_db_name}"]
        await first["things"].insert_one({"_id": 1})
        await second["things"].insert_one({"_id": 2})
        await client.drop_database(f"a_{mongo_db_name}")
        assert await first["things"].count_documents({}) == 0
        assert await second["things"].find_one() == {"_id": 2}
    finally:
        await client.close()


async def test_broker_restarts_on_the_same_port_with_its_topics_but_no_data() -> None:
    with EmbeddedKafka(topics=["kept"]) as kafka:
        port, first_pid = kafka.port, kafka.pid
        await ensure_topics(kafka.bootstrap_servers, ["extra"])
        assert await _round_trip(kafka.bootstrap_servers, "kept", b"one") == b"one"
        kafka.stop()
        assert first_pid is not None
        assert not _alive(first_pid)
        kafka.start()
        assert kafka.port == port
        assert kafka.pid != first_pid
        topics = await _topics(kafka.bootstrap_servers)
        assert "kept" in topics
        assert "extra" not in topics
        assert await _round_trip(kafka.bootstrap_servers, "kept", b"two") == b"two"


async def test_restart_works_while_clients_keep_connecting() -> None:
    with EmbeddedKafka(topics=["busy"]) as kafka:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("busy", b"before")
            kafka.restart()
            # The producer reconnects to the new broker on the same address by itself.
            await asyncio.wait_for(producer.send_and_wait("busy", b"after", partition=0), 15)
        finally:
            await producer.stop()
        record = await _first_record(kafka.bootstrap_servers, "busy")
        assert record.value == b"after"  # "before" went down with the old broker


async def test_mongo_data_dir_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedMongo(data_dir=tmp_path / "mongo") as mongo:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.url)
        await client["notes"]["notes"].insert_one({"_id": "kept"})
        await client.close()
        mongo.restart()
        client = AsyncMongoClient(mongo.url)
        try:
            assert await client["notes"]["notes"].find_one() == {"_id": "kept"}
        finally:
            await client.close()
    assert (tmp_path / "mongo" / "notes.db").exists()


def test_stop_leaves_no_process_behind() -> None:
    with EmbeddedKafka() as kafka:
        pid = kafka.pid
        assert pid is not None
        assert _alive(pid)
    assert not _alive(pid)
    assert not kafka.running


def test_busy_port_is_refused_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedServerError, match=f"port 127.0.0.1:{port} is in use"):
            EmbeddedKafka(port=port).start()


def test_a_server_that_exits_at_start_reports_its_log(tmp_path: Path) -> None:
    # nx-27017 refuses to start while the pid in its pid file is alive: ours is.
    (tmp_path / "nx-27017.pid").write_text(str(os.getpid()))
    mongo = EmbeddedMongo(workdir=tmp_path, startup_timeout=10)
    with pytest.raises(EmbeddedServerError, match=r"(?s)exited with 1.*already running"):
        mongo.start()
    assert not mongo.running

"""The Kafka test helpers, against the session's real broker."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from switchboard_contracts import encode, make_event
from switchboard_contracts.notes import NoteRated
from switchboard_contracts.samples import sample_payload
from switchboard_platform.testing.kafka import produce, start_groups_at_log_end
from switchboard_platform.testing.pytest_plugin import ServerEndpoints


async def test_a_fresh_group_starts_at_the_end_of_what_the_topic_holds(
    servers: ServerEndpoints,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    event = make_event(sample_payload(NoteRated, tenant_id=tenant), tenant_id=tenant, source="/t")
    record = encode(event)
    await produce(servers.kafka_bootstrap_servers, [record, record])
    group = f"fresh-{uuid.uuid4().hex[:8]}"
    await start_groups_at_log_end(servers.kafka_bootstrap_servers, [(record.topic, group)])
    reader = AIOKafkaConsumer(bootstrap_servers=servers.kafka_bootstrap_servers)
    await reader.start()
    try:
        await reader.topics()
        ids = sorted(reader.partitions_for_topic(record.topic) or ())
        partitions = [TopicPartition(record.topic, p) for p in ids]
        ends = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    positions = {tp: meta.offset for tp, meta in committed.items()}
    assert sum(ends.values()) >= 2  # the two records just produced, at least
    assert positions == ends

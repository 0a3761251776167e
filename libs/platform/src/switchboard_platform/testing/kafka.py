"""Kafka helpers for tests: put records straight onto the real topics (as another service or
an attacker would), start fresh consumer groups at the end of the shared topics, and hand a
record to a pipeline as a consumer would."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from switchboard_contracts import KafkaRecord

from ..consumer import RawRecord


def raw_record(record: KafkaRecord, *, partition: int = 0, offset: int = 0) -> RawRecord:
    """`record` as a consumer hands it to the pipeline, from `partition` at `offset`."""
    headers = tuple((k, v.encode()) for k, v in record.headers.items())
    return RawRecord(record.topic, partition, offset, record.key, record.value, headers)


async def produce(bootstrap_servers: str, records: Iterable[KafkaRecord]) -> None:
    """Send each record with acks from all replicas, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for r in records:
            headers = [(k, v.encode()) for k, v in r.headers.items()]
            await producer.send_and_wait(r.topic, r.value, key=r.key, headers=headers)
    finally:
        await producer.stop()


async def start_groups_at_log_end(
    bootstrap_servers: str, subscriptions: Iterable[tuple[str, str]]
) -> None:
    """Commit the current end of each topic as the position of each (new) consumer group.

    For a test whose apps join fresh groups on topics the session shares: without this,
    such a group starts at the earliest offset and first works through every event the
    earlier tests left there (thousands, late in a run) before it reaches the test's own.
    Call it before the apps start; whatever is published afterwards, they consume.
    """
    by_group: dict[str, set[str]] = {}
    for topic, group in subscriptions:
        by_group.setdefault(group, set()).add(topic)
    for group, topics in by_group.items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await consumer.topics()  # load the metadata of every topic
            partitions = [
                TopicPartition(topic, p)
                for topic in sorted(topics)
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                continue
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.commit(dict(ends))
        finally:
            await consumer.stop()

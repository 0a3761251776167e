"""Read what services published, straight from the real topics, for assertions."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from switchboard_contracts import Event, decode


async def collect_events(
    bootstrap_servers: str,
    topic: str,
    *,
    tenant: str,
    expect: int,
    timeout_s: float = 20.0,
    settle_s: float = 0.0,
) -> list[Event[Any]]:
    """All events of `tenant` on `topic` from the beginning, once `expect` arrived.

    With `settle_s`, keeps reading that long after the expected count, so a test can
    prove that no extra (duplicate) event follows.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    # no consumer group: assign every partition directly, no join to wait for
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not partitions:
        await consumer.stop()
        raise LookupError(f"topic {topic!r} does not exist")
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    found: list[Event[Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for r in records:
                    if r.key == tenant.encode():
                        found.append(decode(r.topic, r.value, r.headers))
            if len(found) >= expect:
                if settle_s <= 0:
                    break
                deadline = min(deadline, loop.time() + settle_s)
                settle_s = 0
    finally:
        await consumer.stop()
    return found


async def records_of(
    bootstrap_servers: str, topics: tuple[str, ...], tenant: str
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `tenant` on `topics` as stored (key, value, headers), from the start
    to the end each partition had when called."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)

        async def behind() -> bool:
            return any([await consumer.position(p) < ends[p] for p in parts])

        found: list[ConsumerRecord[bytes, bytes]] = []
        while await behind():
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found += [r for r in batch if r.key == tenant.encode()]
        return found
    finally:
        await consumer.stop()

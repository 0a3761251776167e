"""Put records straight onto the real topics, as another service or an attacker would."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from switchboard_contracts import KafkaRecord


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

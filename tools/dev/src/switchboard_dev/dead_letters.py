"""Dead letters on the `<topic>.dlq` topics: read them without a consumer group, replay them."""

# The platform's consumers (switchboard_platform.consumer.DeadLetters) put an unprocessable
# record on `<topic>.dlq` with its original key, value and headers, plus `dlq_*` headers that
# name the error, the service and the origin. Replaying publishes the original back to its
# topic; consumers are idempotent on the event id, so a replay is safe to repeat.

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from switchboard_contracts.topics import dead_letter_topic

DLQ_PREFIX = "dlq_"
REPLAYED_FROM = "dlq_replayed_from"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic, as it lies there."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def position(self) -> str:
        """Where it lies: `topic/partition/offset`."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def original_topic(self) -> str:
        """The topic it failed on, from the dead-letter topic's name (headers are not trusted)."""
        return self.topic.removesuffix(".dlq")

    def header(self, name: str) -> str | None:
        """The text of header `name`, or None when it is absent."""
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (every `dlq_*` one dropped) plus where the replay came from."""
        kept = [(k, v) for k, v in self.headers if not k.startswith(DLQ_PREFIX)]
        return [*kept, (REPLAYED_FROM, self.position.encode())]


@dataclass(frozen=True)
class Scan:
    """What reading the dead-letter topics found, and which of them the broker does not have."""

    letters: list[DeadLetter]
    missing_topics: list[str]


@dataclass(frozen=True)
class Replayed:
    """A dead letter published again, and where its copy landed."""

    letter: DeadLetter
    topic: str
    partition: int
    offset: int


async def read_dead_letters(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    tenant: str | None = None,
    timeout_s: float = 60.0,
    **client_options: Any,
) -> Scan:
    """The dead letters of `topics` (with key `tenant`), oldest first, up to the end seen now."""
    # Partitions are assigned directly: no consumer group joins, nothing is ever committed.
    wanted = [dead_letter_topic(t) for t in topics]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        **client_options,
    )
    try:
        await consumer.start()
        existing = await consumer.topics()
        partitions = [
            TopicPartition(t, p)
            for t in wanted
            if t in existing
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        letters = await _read_to_end(consumer, partitions, timeout_s) if partitions else []
    finally:
        await consumer.stop()
    key = None if tenant is None else tenant.encode()
    kept = [letter for letter in letters if key is None or letter.key == key]
    kept.sort(key=lambda d: (d.topic, d.partition, d.offset))
    return Scan(kept, [t for t in wanted if t not in existing])


async def _read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout_s: float
) -> list[DeadLetter]:
    """Read each partition from its first offset to the end offset it has when we start."""
    consumer.assign(partitions)
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > starts[tp]}
    for tp in pending:
        consumer.seek(tp, starts[tp])
    letters: list[DeadLetter] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending:
        if loop.time() > deadline:
            raise TimeoutError(f"dead-letter topics not read to the end in {timeout_s:g}s")
        batches = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in batches.items():
            letters.extend(
                DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                for r in records
                if r.offset < ends[tp]
            )
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return letters


async def replay(
    bootstrap_servers: str, letters: Sequence[DeadLetter], **client_options: Any
) -> list[Replayed]:
    """Publish each letter to its original topic: original key, value and headers, acks=all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=False,  # the embedded dev broker does not support it (ADR 0003)
        **client_options,
    )
    done: list[Replayed] = []
    try:
        await producer.start()
        for letter in letters:  # one at a time, so each tenant's order is kept
            meta = await producer.send_and_wait(
                letter.original_topic,
                letter.value,
                key=letter.key,
                headers=letter.replay_headers(),
            )
            done.append(Replayed(letter, meta.topic, meta.partition, meta.offset))
    finally:
        await producer.stop()
    return done

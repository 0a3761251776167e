"""How many messages wait on the dead-letter topics a service writes to (for alerts).

Nothing consumes a `<topic>.dlq` but an operator (`switchboard dlq`), so its depth is its
end offsets minus its start offsets: polled every 30 s into
`switchboard_dead_letter_topic_messages{topic}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from .kafka import client_security, stop_consumer
from .metrics import DEAD_LETTER_DEPTH
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class DeadLetterDepth:
    """Polls the depth of the given dead-letter topics."""

    def __init__(
        self,
        settings: ServiceSettings,
        service: str,
        topics: Sequence[str],
        *,
        interval_s: float = 30.0,
    ) -> None:
        self._settings = settings
        self._service = service
        self._topics = tuple(topics)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Poll in the background."""
        if self._topics:
            self._task = asyncio.create_task(self._run(), name="dead-letter-depth")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        consumer: AIOKafkaConsumer | None = None
        try:
            while True:
                try:
                    if consumer is None:
                        consumer = AIOKafkaConsumer(
                            bootstrap_servers=self._settings.kafka_bootstrap_servers,
                            enable_auto_commit=False,
                            request_timeout_ms=10_000,
                            **client_security(self._settings),
                        )
                        await consumer.start()
                    await self._measure(consumer)
                except asyncio.CancelledError:
                    raise
                except Exception:  # Kafka away: the gauge keeps its last value
                    log.debug("dead-letter depth unknown", exc_info=True)
                await asyncio.sleep(self._interval_s)
        finally:
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await stop_consumer(consumer)

    async def _measure(self, consumer: AIOKafkaConsumer) -> None:
        for topic in self._topics:
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            if not partitions:
                await consumer.topics()
                continue
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            depth = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)
            DEAD_LETTER_DEPTH.labels(service=self._service, topic=topic).set(depth)

"""Stopping a Kafka consumer whose fetch is in its retry back-off (aio-libs/aiokafka#647).

Seen in a service stopped right after it became ready: a fetch had failed while the broker
connection was still being set up, and `AIOKafkaConsumer.stop()` raised `CancelledError`,
which failed the whole shutdown. Reproduced here on the real broker by failing the
consumer's fetches and stopping it during the back-off that follows.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import NodeNotReadyError

from switchboard_platform.kafka import stop_consumer
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

BACKOFF_MS = 10_000


async def _in_backoff(servers: ServerEndpoints) -> tuple[AIOKafkaConsumer, list[str]]:
    """A started consumer, assigned a partition, whose next fetch fails and backs off."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers.kafka_bootstrap_servers,
        enable_auto_commit=False,
        retry_backoff_ms=BACKOFF_MS,
        fetch_max_wait_ms=20,
        client_id=f"stop-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    failed: list[str] = []
    send = consumer._client.send

    async def failing(node_id: Any, request: Any, **kw: Any) -> Any:
        if type(request).__name__.startswith("FetchRequest"):
            failed.append(type(request).__name__)
            raise NodeNotReadyError("not ready")
        return await send(node_id, request, **kw)

    consumer._client.send = failing
    consumer.assign([TopicPartition("call.received", 0)])
    async with asyncio.timeout(10):
        while not failed:  # noqa: ASYNC110 - the fetcher's own loop sends it
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # now in the back-off
    return consumer, failed


async def test_a_consumer_stopped_during_a_fetch_back_off_stops_without_raising(
    servers: ServerEndpoints,
) -> None:
    consumer, failed = await _in_backoff(servers)
    async with asyncio.timeout(5):  # not the back-off's 10 s
        stopped = await stop_consumer(consumer)
    assert failed
    assert stopped is False  # interrupted by its fetcher, and said so
    conns = list(consumer._client._conns.values())
    assert conns
    assert not any(c.connected() for c in conns)  # closed all the same


async def test_the_stop_it_guards_raises_there(servers: ServerEndpoints) -> None:
    """aiokafka's own `stop()` in the same state: if this ever stops raising, the guard
    in `stop_consumer` can go."""
    consumer, _ = await _in_backoff(servers)
    with pytest.raises(asyncio.CancelledError):
        await consumer.stop()
    await consumer._client.close()


async def test_a_cancelled_caller_is_still_cancelled(servers: ServerEndpoints) -> None:
    consumer, _ = await _in_backoff(servers)
    task = asyncio.create_task(stop_consumer(consumer))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await consumer._client.close()

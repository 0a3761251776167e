"""Watches for notes: `note.created` arrivals on the topic, and sampled notes via the API.

Runs in the orchestrating process, on its own event loop, apart from the load generator.
The topic watcher assigns itself every partition (no group join) and polls with a 10 ms
fetch wait: the embedded broker always waits that long, which bounds the resolution.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from switchboard_contracts.topics import NOTE_CREATED
from switchboard_notes.domain import note_id_for
from switchboard_platform.testing.tokens import auth_header

from .stats import percentiles_ms

POLL_INTERVAL_S = 0.005
POLL_RESOLUTION = 0.05  # later polls wait 5% of the time waited so far: bounded poll load
MAX_OUTSTANDING = 8  # sampled calls polled at once; more are skipped, never queued
POLL_GIVE_UP_S = 30.0


async def seek_to_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Position an assigned consumer at the current end of each partition, explicitly."""
    for partition, offset in (await consumer.end_offsets(partitions)).items():
        consumer.seek(partition, offset)


class TopicWatcher:
    """Records when each call's `note.created` arrives (monotonic clock, by call id)."""

    def __init__(self, bootstrap_servers: str, topic: str = NOTE_CREATED) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_poll_records=10_000,
        )
        self._topic = topic
        self._task: asyncio.Task[None] | None = None
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self._waiters: dict[str, asyncio.Future[float]] = {}

    async def start(self) -> None:
        """Assign every partition, skip what is already there, start reading."""
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await seek_to_end(self._consumer, assigned)
        self._task = asyncio.create_task(self._read(), name="topic-watcher")

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    call_id = json.loads(record.value)["call_id"]
                    if call_id in self.arrivals:
                        self.duplicates += 1
                    else:
                        self.arrivals[call_id] = now
                        waiter = self._waiters.pop(call_id, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(now)

    async def wait_for(self, call_id: str, timeout_s: float) -> float | None:
        """When the call's `note.created` arrived; waits for it up to `timeout_s`."""
        if call_id in self.arrivals:
            return self.arrivals[call_id]
        waiter = self._waiters.setdefault(call_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return None
        finally:
            self._waiters.pop(call_id, None)

    def pause(self) -> None:
        """Stop fetching (the baseline runs alone on the broker) until `resume`."""
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        """Fetch again from where it paused."""
        self._consumer.resume(*self._consumer.assignment())

    async def stop(self) -> None:
        """Stop reading and close the consumer."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


@dataclass
class ApiSample:
    """One sampled call: when its 201 came, and when its note first read back (or never)."""

    call_id: str
    accepted_at: float
    readable_at: float | None = None
    polls: int = 0


@dataclass
class ApiSampler:
    """Polls `GET /v1/notes/{id}` as the tenant's client for calls the load process samples.

    Every 5 ms at first, then at 5% of the time waited so far, and for at most a few calls
    at once: when notes lags, the polls must not become the load that makes it lag.
    """

    notes_url: str
    samples: list[ApiSample] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None
    _transport: asyncio.DatagramTransport | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: int = 0

    async def start(self) -> int:
        """Listen for sampled calls on a free UDP port; return the port."""
        self._client = httpx.AsyncClient(base_url=self.notes_url, timeout=10)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_sample), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        port: int = transport.get_extra_info("sockname")[1]
        return port

    def _on_sample(self, data: bytes) -> None:
        if len(self._tasks) >= MAX_OUTSTANDING:
            self.skipped += 1
            return
        call_id, tenant_id, accepted_at = data.decode().split()
        sample = ApiSample(call_id, float(accepted_at))
        self.samples.append(sample)
        task = asyncio.create_task(self._poll(sample, tenant_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, sample: ApiSample, tenant_id: str) -> None:
        assert self._client is not None
        headers = self._headers.get(tenant_id)
        if headers is None:
            headers = auth_header("client", tenant=tenant_id, sub="bench-client")
            self._headers[tenant_id] = headers
        path = f"/v1/notes/{note_id_for(sample.call_id)}"
        while time.monotonic() - sample.accepted_at < POLL_GIVE_UP_S:
            sample.polls += 1
            try:
                response = await self._client.get(path, headers=headers)
            except httpx.HTTPError:
                response = None
            now = time.monotonic()
            if response is not None and response.status_code == 200:
                sample.readable_at = now
                return
            await asyncio.sleep(max(POLL_INTERVAL_S, (now - sample.accepted_at) * POLL_RESOLUTION))

    def report(self, since: float, arrivals: dict[str, float]) -> dict[str, Any]:
        """Latency figures of the samples taken since `since` (which are then forgotten)."""
        samples = [s for s in self.samples if s.accepted_at >= since]
        self.samples = [s for s in self.samples if s.accepted_at < since]
        done = [s for s in samples if s.readable_at is not None]
        done.sort(key=lambda s: (s.readable_at or 0.0) - s.accepted_at, reverse=True)
        return {
            "api_ms": percentiles_ms((s.readable_at or 0.0) - s.accepted_at for s in done),
            "api_polls_per_sample": round(sum(s.polls for s in samples) / max(len(samples), 1), 1),
            # the slowest beside the same calls' topic latency: slow note, or slow read?
            "api_slowest": [
                {
                    "api_ms": _ms((s.readable_at or 0.0) - s.accepted_at),
                    "topic_ms": _ms(arrivals[s.call_id] - s.accepted_at)
                    if s.call_id in arrivals
                    else None,
                    "polls": s.polls,
                }
                for s in done[:5]
            ],
        }

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until every sampled call has been read back or given up on."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def stop(self) -> None:
        """Stop listening, cancel polls, close the client."""
        if self._transport is not None:
            self._transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class _Datagrams(asyncio.DatagramProtocol):
    """Hands each received datagram to a callback."""

    def __init__(self, callback: Callable[[bytes], None]) -> None:
        self._callback = callback

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """One sampled call."""
        self._callback(data)

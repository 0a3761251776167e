"""The baseline: the suite's bare I/O per call in one process, one tight asyncio loop.

Per call, stage "intake" inserts a document into MongoDB and produces it (acks=all); stage
"notes" consumes it, inserts a note document and produces it; a watcher consumes that. Same
embedded servers, motor and aiokafka directly, no HTTP, no framework, no outbox, no commits.
The call counts as accepted once its insert returns (where intake answers 201). Like the
suite's maximum step, the closed loop keeps a fixed number of calls in flight end to end.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from bson import Binary
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import DuplicateKeyError

from switchboard_platform.kafka_admin import ensure_topics

from .load import NOTE_WAIT_S
from .observer import TopicWatcher, seek_to_end
from .procs import CpuMeter
from .stats import CallRecord, cpu_ms_per_call, summarize_step

CALLS_TOPIC = "bench.baseline.calls"
NOTES_TOPIC = "bench.baseline.notes"
DATABASE = "bench_baseline"
_BY_TENANT = IndexModel([("tenant_id", ASCENDING), ("started_at", DESCENDING)])


@dataclass(frozen=True)
class BaselineSpec:
    """Where the servers are and how to drive the baseline."""

    bootstrap_servers: str
    mongodb_url: str
    tenants: list[str]
    rate_per_s: float
    rate_duration_s: float
    concurrency: int
    max_duration_s: float
    fetch_max_wait_ms: int
    server_pids: dict[str, int]
    database: str = DATABASE


def _headers(event_id: str, kind: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_type", kind.encode()),
        ("ce_source", b"/switchboard/bench"),
        ("content-type", b"application/json"),
    ]


class Pipeline:
    """The two stages and the watcher, sharing one producer and one database client."""

    def __init__(self, spec: BaselineSpec) -> None:
        self._spec = spec
        self._mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            spec.mongodb_url, tz_aware=True
        )
        db = self._mongo[spec.database]
        self._calls, self._notes = db["calls"], db["notes"]
        self._producer = AIOKafkaProducer(
            bootstrap_servers=spec.bootstrap_servers, acks="all", linger_ms=2
        )
        self._stage2 = AIOKafkaConsumer(
            bootstrap_servers=spec.bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=spec.fetch_max_wait_ms,
        )
        self.watcher = TopicWatcher(spec.bootstrap_servers, NOTES_TOPIC)
        self._task: asyncio.Task[None] | None = None
        self._counter = 0

    async def start(self) -> None:
        """Create topics and indexes, connect, and start consuming."""
        await ensure_topics(self._spec.bootstrap_servers, [CALLS_TOPIC, NOTES_TOPIC], 4)
        await self._calls.create_indexes([_BY_TENANT])
        await self._notes.create_indexes([_BY_TENANT, IndexModel("call_id", unique=True)])
        await self._producer.start()
        await self._stage2.start()
        parts = [
            TopicPartition(CALLS_TOPIC, p) for p in self._stage2.partitions_for_topic(CALLS_TOPIC)
        ]
        self._stage2.assign(parts)
        await seek_to_end(self._stage2, parts)
        await self.watcher.start()
        self._task = asyncio.create_task(self._notes_stage())

    async def stop(self) -> None:
        """Stop the loops and close every client."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stage2.stop()
        await self.watcher.stop()
        await self._producer.stop()
        await self._mongo.close()

    async def accept(self, sent: float) -> CallRecord:
        """Stage "intake": insert the call, then produce it; accepted when the insert returns."""
        self._counter += 1
        call_id = str(uuid.uuid4())
        tenant = self._spec.tenants[self._counter % len(self._spec.tenants)]
        now = datetime.now(UTC)
        data = {
            "call_id": call_id,
            "tenant_id": tenant,
            "agent_id": "bench-agent",
            "caller": {"name": f"Caller {self._counter}", "phone": "+4915211014450"},
            "concern": f"Bitte um Rückruf wegen Termin ({self._counter})",
            "started_at": now.isoformat(),
            "received_at": now.isoformat(),
        }
        value = json.dumps(data).encode()
        doc = {**data, "_id": call_id, "started_at": now, "event": Binary(value)}
        await self._calls.insert_one(doc)
        accepted = time.monotonic()
        await self._producer.send(
            CALLS_TOPIC, value, key=tenant.encode(), headers=_headers(call_id, "call.received")
        )
        return (call_id, tenant, sent, accepted, 201)

    async def _notes_stage(self) -> None:
        """Stage "notes": per consumed call, insert a note and produce it; await the acks."""
        while True:
            batches = await self._stage2.getmany(timeout_ms=100)
            pending = []
            for records in batches.values():
                for record in records:
                    data = json.loads(record.value)
                    note_id = str(uuid.uuid5(uuid.NAMESPACE_URL, data["call_id"]))
                    note = {**data, "note_id": note_id, "created_at": datetime.now(UTC).isoformat()}
                    value = json.dumps(note).encode()
                    started = datetime.fromisoformat(data["started_at"])
                    doc = {**note, "_id": note_id, "started_at": started, "event": Binary(value)}
                    try:
                        await self._notes.insert_one(doc)
                    except DuplicateKeyError:  # re-read: the embedded broker's end offset lags
                        continue
                    pending.append(
                        await self._producer.send(
                            NOTES_TOPIC,
                            value,
                            key=record.key,
                            headers=_headers(note_id, "note.created"),
                        )
                    )
            await asyncio.gather(*pending)

    async def drain(self, calls: list[CallRecord], timeout_s: float = 30.0) -> None:
        """Wait until every accepted call's note has arrived, or the timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(c[0] in self.watcher.arrivals for c in calls):
                return
            await asyncio.sleep(0.05)


async def _open_loop(pipeline: Pipeline, rate: float, duration_s: float) -> list[CallRecord]:
    started = time.monotonic()
    tasks = []
    i = 0
    while (due := started + i / rate) < started + duration_s:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pipeline.accept(due)))
        i += 1
    return list(await asyncio.gather(*tasks))


async def _closed_loop(pipeline: Pipeline, concurrency: int, until: float) -> list[CallRecord]:
    calls: list[CallRecord] = []

    async def client() -> None:
        while (now := time.monotonic()) < until:
            call = await pipeline.accept(now)
            calls.append(call)
            await pipeline.watcher.wait_for(call[0], NOTE_WAIT_S)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return calls


async def run_baseline(spec: BaselineSpec) -> dict[str, Any]:
    """A steady-rate step (latency; skipped at `rate_duration_s` 0) and a closed-loop step
    (throughput) of the bare I/O."""
    pipeline = Pipeline(spec)
    await pipeline.start()
    try:
        await _open_loop(pipeline, 20, 1.0)  # warm-up, not reported
        meter = CpuMeter({**spec.server_pids, "baseline": os.getpid()})
        result: dict[str, Any] = {}
        if spec.rate_duration_s > 0:
            started = time.monotonic()
            meter.start(started)
            calls = await _open_loop(pipeline, spec.rate_per_s, spec.rate_duration_s)
            window_end = started + spec.rate_duration_s
            await pipeline.drain(calls)
            result["rate"] = summarize_step(
                calls, started, window_end, pipeline.watcher.arrivals, spec.rate_per_s
            )
            result["rate"]["cpu_cores"] = meter.shares(time.monotonic())
        started = time.monotonic()
        meter.start(started)
        window_end = started + spec.max_duration_s
        calls = await _closed_loop(pipeline, spec.concurrency, window_end)
        result["max"] = summarize_step(calls, started, window_end, pipeline.watcher.arrivals, None)
        result["max"]["cpu_cores"] = meter.shares(time.monotonic())
        await pipeline.drain(calls)
        result["max"]["concurrency"] = spec.concurrency
        for step in result.values():
            step["cpu_ms_per_call"] = cpu_ms_per_call(step["cpu_cores"], step["notes_per_s"])
        return result
    finally:
        await pipeline.stop()


def baseline_process(spec: BaselineSpec, conn: Connection) -> None:
    """Entry point of the baseline process: run it, send the result back, exit."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run_baseline(spec))
    conn.send(result)
    conn.close()

"""Any number of replicas (issue 7 §2): 3 intake and 2 notes processes, one of each killed twice.

Every accepted call has exactly one note, and for every tenant `note.created` follows the
order in which intake accepted the calls (for calls sent after the previous one's 201;
calls in flight together have no order to keep).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import MongoClient

from switchboard_contracts import decode
from switchboard_dev.suite import (
    LoadResult,
    Suite,
    causal_order_violations,
    create_tenant,
    post_calls,
    running_suite,
    tenant_numbers,
)

pytestmark = pytest.mark.slow

TOTAL_CALLS = 1200
RATE_PER_S = 80.0
TENANTS = 6


async def _kills(suite: Suite, started: float) -> list[str]:
    """SIGKILL intake-1 and notes-1 twice each while the load runs; restart each."""
    intake, notes = suite.replicas["intake"][1], suite.replicas["notes"][1]
    log = []
    for at, victim in ((2.0, notes), (4.0, intake), (8.0, notes), (10.0, intake)):
        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
        victim.kill()
        killed = time.monotonic()
        victim.start(wait_ready=False)  # from this thread: see ServiceProcess.start
        await asyncio.to_thread(victim.wait_ready)
        log.append(f"{victim.name} killed at {at}s, ready {time.monotonic() - killed:.1f}s later")
    return log


async def _note_created_order(bootstrap: str) -> list[tuple[str, str]]:
    """(tenant, call id) of every `note.created`, partition by partition, in log order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition("note.created", p)
            for p in consumer.partitions_for_topic("note.created") or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[str, str]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    event: Any = decode(r.topic, r.value, r.headers)
                    found.append((event.tenantid, event.data.call_id))
        return found
    finally:
        await consumer.stop()


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.5)


def test_three_intake_and_two_notes_replicas_killed_twice_keep_every_call_once_and_in_order(
    tmp_path: Path,
) -> None:
    with running_suite(tmp_path, replicas={"intake": 3, "notes": 2}) as suite:
        numbers = tenant_numbers(TENANTS)
        for number in numbers:
            create_tenant(suite.intake.url, number)
        urls = [p.url for p in suite.replicas["intake"]]

        async def scenario() -> tuple[LoadResult, list[str]]:
            started = time.monotonic()
            load = asyncio.create_task(
                post_calls(urls, numbers, total=TOTAL_CALLS, rate_per_s=RATE_PER_S)
            )
            kills = await _kills(suite, started)
            return await load, kills

        result, kills = asyncio.run(scenario())
        accepted = result.accepted
        summary = f"{len(accepted)} accepted, {result.refused} refused, {result.errors} errors"
        assert len(accepted) > TOTAL_CALLS * 0.8, summary

        mongo: MongoClient[dict[str, Any]] = MongoClient(suite.mongo.url)
        notes, calls = mongo["notes"]["notes"], mongo["intake"]["calls"]
        _wait_for(lambda: notes.count_documents({}) >= calls.count_documents({}), 90)
        stored = {d["_id"] for d in calls.find({}, {"_id": 1})}
        note_calls = [d["call_id"] for d in notes.find({}, {"call_id": 1})]
        mongo.close()
        assert set(accepted) <= stored, summary
        missing = set(accepted) - set(note_calls)
        assert not missing, f"{len(missing)} accepted calls have no note; {summary}; {kills}"
        assert len(note_calls) == len(set(note_calls)), "a call has two notes"

        published = asyncio.run(_note_created_order(suite.kafka.bootstrap_servers))
        assert set(accepted) <= {call for _, call in published}
        violations = causal_order_violations(result.calls, published)
        assert violations == [], f"{len(violations)} calls published out of order; {kills}"

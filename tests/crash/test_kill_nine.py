"""No call lost, no note duplicated, when services are killed with SIGKILL mid-load (issue 3 §2).

The services run as real processes on their own embedded broker and MongoDB-compatible
server; the test kills them with SIGKILL (no shutdown hook runs) and restarts them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from switchboard_dev.suite import LoadResult, Suite, create_tenant, post_calls, running_suite
from switchboard_platform.testing.topics import collect_events

pytestmark = pytest.mark.slow

TOTAL_CALLS = 2000
RATE_PER_S = 100.0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _back_after(url: str, since: float) -> float:
    while not await asyncio.to_thread(_answers, url):  # noqa: ASYNC110 - polling a process
        await asyncio.sleep(0.02)
    return round(time.monotonic() - since, 2)


async def _kill_schedule(suite: Suite, started: float) -> list[str]:
    """SIGKILL notes three times and intake once while the load runs; restart each at once.

    Records how long each is out (issue 7 §3): intake until its API serves again
    (`/readyz?scope=http`, what a load balancer asks), notes until it consumes again
    (`/readyz`: its consumers joined). Measured, not asserted: the machine is shared.
    """
    log = []
    plan = ((3.0, suite.notes), (7.0, suite.notes), (10.0, suite.intake), (14.0, suite.notes))
    for at, victim in plan:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
        killed = time.monotonic()
        victim.kill()
        victim.start(wait_ready=False)  # from this thread: see ServiceProcess.start
        probe = "/readyz?scope=http" if victim.service == "intake" else "/readyz"
        back = await _back_after(victim.url + probe, killed)
        log.append(f"{victim.name} killed at {at}s, back {back}s later")
    print("\n".join(log))  # shown with `pytest -s`; the figures are in bench/README.md
    return log


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)


def test_sigkill_of_notes_and_intake_loses_no_accepted_call_and_duplicates_no_note(
    tmp_path: Path,
) -> None:
    with running_suite(tmp_path) as suite:
        number = "+4924112345670"
        create_tenant(suite.intake.url, number)

        async def scenario() -> tuple[LoadResult, list[str]]:
            started = time.monotonic()
            load = asyncio.create_task(
                post_calls(suite.intake.url, number, total=TOTAL_CALLS, rate_per_s=RATE_PER_S)
            )
            kills = await _kill_schedule(suite, started)
            return await load, kills

        result, kills = asyncio.run(scenario())
        assert (suite.notes.starts, suite.intake.starts) == (4, 2), kills
        accepted = result.accepted
        # the load retries a failed call (same Idempotency-Key) while intake restarts
        assert len(accepted) > TOTAL_CALLS * 0.8, (
            f"most calls should be accepted: {len(accepted)} accepted, refused {result.statuses}, "
            f"{result.errors} errors; {kills}"
        )

        mongo: MongoClient[dict[str, object]] = MongoClient(suite.mongo.url)
        notes = mongo["notes"]["notes"]
        calls = mongo["intake"]["calls"]
        _wait_for(lambda: notes.count_documents({}) >= calls.count_documents({}), 90)

        stored_calls = {d["_id"] for d in calls.find({}, {"_id": 1})}
        note_calls = [d["call_id"] for d in notes.find({}, {"call_id": 1})]
        # every call that got a 201 is stored and has exactly one note
        assert set(accepted) <= stored_calls
        missing = set(accepted) - set(note_calls)
        summary = (
            f"{len(accepted)} accepted, {result.refused} refused, {result.errors} errors, "
            f"{len(stored_calls)} stored calls, {len(note_calls)} notes; {kills}"
        )
        assert not missing, f"{len(missing)} accepted calls have no note: {summary}"
        assert len(note_calls) == len(set(note_calls)), "a call has two notes"
        # no note exists without its call (a call may be stored although its 201 was lost)
        assert set(note_calls) <= stored_calls
        # and every note was announced: note.created holds each note at least once
        tenant_id = next(iter(accepted.values()))
        created = asyncio.run(
            collect_events(
                suite.kafka.bootstrap_servers,
                "note.created",
                tenant=tenant_id,
                expect=len(note_calls),
                timeout_s=60,
            )
        )
        assert {e.data.call_id for e in created} == set(note_calls)
        mongo.close()

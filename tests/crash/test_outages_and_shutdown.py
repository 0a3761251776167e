"""Broker and database go away and come back; a service stops gracefully mid-load (issue 3).

Guarantee checked by the outage test: calls accepted while Kafka is unreachable are kept in
intake's outbox and become notes once a broker is back, with no service restarted. The
embedded broker keeps its log in memory only, so a restart empties it; the test therefore
lets the notes catch up before the outage, so that every event still needed afterwards
lives in an outbox (on replicated Kafka the log itself would survive too).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import MongoClient

from switchboard_dev.suite import Suite, create_tenant, post_calls, running_suite
from switchboard_platform.testing.polling import wait_until

pytestmark = pytest.mark.slow


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _mongo(suite: Suite) -> MongoClient[dict[str, Any]]:
    return MongoClient(suite.mongo.url)


async def _has_members(suite: Suite, group: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=suite.kafka.bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return any(described[5] for described in response.groups)


def _note_count(suite: Suite) -> int:
    with _mongo(suite) as mongo:
        return mongo["notes"]["notes"].count_documents({})


def test_calls_accepted_while_kafka_is_down_become_notes_when_it_returns(tmp_path: Path) -> None:
    with running_suite(tmp_path) as suite:
        number = "+4924112345671"
        create_tenant(suite.intake.url, number)
        before = asyncio.run(post_calls(suite.intake.url, number, total=100, rate_per_s=100))
        assert len(before.accepted) == 100
        wait_until(lambda: _note_count(suite) == 100, timeout_s=60, what="notes before the outage")

        suite.kafka.stop()
        during = asyncio.run(post_calls(suite.intake.url, number, total=150, rate_per_s=50))
        assert len(during.accepted) == 150, "intake must keep accepting calls without Kafka"
        assert not _ready(suite.intake.url), "readiness must report the lost broker"
        # …while a load balancer asking only for what the API needs keeps sending calls
        assert httpx.get(f"{suite.intake.url}/readyz?scope=http", timeout=3).status_code == 200
        time.sleep(1)
        assert _note_count(suite) == 100

        # The restarted broker is empty (memory storage), and until a heartbeat tells notes
        # its membership is gone, notes keeps fetching at its old positions: records intake
        # publishes below them meanwhile would be skipped, something a Kafka that keeps its
        # log never does. notes reads a log again once it stayed shorter than what it read
        # for 10 s (topic_consumer._restart_truncated), but intake's burst grows each log past
        # the old position sooner. So intake is held (SIGSTOP) until notes has joined the new
        # broker, which starts it from the new log's beginning.
        os.kill(suite.intake.pid or 0, signal.SIGSTOP)
        try:
            suite.kafka.start()  # same port, empty: topics are created again
            wait_until(
                lambda: asyncio.run(_has_members(suite, "notes.call.received")),
                timeout_s=60,
                what="notes to join the restarted broker",
            )
        finally:
            os.kill(suite.intake.pid or 0, signal.SIGCONT)
        wait_until(lambda: _note_count(suite) == 250, timeout_s=120, what="notes after the outage")
        with _mongo(suite) as mongo:
            calls = mongo["intake"]["calls"]
            assert calls.count_documents({"_outbox_since": {"$exists": True}}) == 0
            note_calls = [d["call_id"] for d in mongo["notes"]["notes"].find({}, {"call_id": 1})]
        assert set(during.accepted) | set(before.accepted) == set(note_calls)
        assert len(note_calls) == len(set(note_calls))
        wait_until(
            lambda: _ready(suite.intake.url) and _ready(suite.notes.url),
            timeout_s=60,
            what="readiness",
        )


def test_services_stopped_while_kafka_is_down_shut_down_in_full(tmp_path: Path) -> None:
    """A SIGTERM during a broker outage (a rolling restart of both, say) ends each service
    with status 0 and its whole shutdown done. Before, a consumer's fetcher in its retry
    back-off made aiokafka's `stop()` raise `CancelledError` (aio-libs/aiokafka#647), which
    failed the shutdown at its first step: "Application shutdown failed", nothing else
    stopped or flushed, the process killed by the signal."""
    with running_suite(tmp_path) as suite:
        suite.kafka.stop()
        time.sleep(2)  # every fetch loop fails and backs off
        for service in (suite.intake, suite.notes):
            code = service.terminate()
            log = service.log_path.read_text(errors="replace")
            assert "Application shutdown failed" not in log, service.log_tail()
            assert code == 0, service.log_tail()
            assert "service stopped" in log


def test_sigterm_mid_load_finishes_in_flight_work_and_loses_nothing(tmp_path: Path) -> None:
    with running_suite(tmp_path) as suite:
        number = "+4924112345672"
        create_tenant(suite.intake.url, number)

        async def scenario() -> tuple[dict[str, str], int]:
            load = asyncio.create_task(
                post_calls(suite.intake.url, number, total=300, rate_per_s=100)
            )
            await asyncio.sleep(1.5)
            code = await asyncio.to_thread(suite.notes.terminate)
            suite.notes.start(wait_ready=False)
            await asyncio.to_thread(suite.notes.wait_ready)
            return (await load).accepted, code

        accepted, code = asyncio.run(scenario())
        assert code == 0, suite.notes.log_tail()  # a stop asked for, and done, is a success
        assert "service stopped" in suite.notes.log_path.read_text()
        assert len(accepted) == 300
        wait_until(lambda: _note_count(suite) == 300, timeout_s=90, what="every note")


def test_database_outage_answers_503_stalls_consumers_and_recovers_on_its_own(
    tmp_path: Path,
) -> None:
    """MongoDB unreachable: no 500, no lost event, readiness false, then recovery (issue 3 §1)."""
    with running_suite(tmp_path, mongo_data_dir=tmp_path / "mongo") as suite:
        number = "+4924112345673"
        create_tenant(suite.intake.url, number)
        first = asyncio.run(post_calls(suite.intake.url, number, total=50, rate_per_s=100))
        assert len(first.accepted) == 50

        suite.mongo.stop()
        during = asyncio.run(post_calls(suite.intake.url, number, total=5, rate_per_s=5))
        assert during.accepted == {}
        assert during.statuses == {503: 5}, "a lost database is a 503, never a 500"
        wait_until(
            lambda: not _ready(suite.notes.url), timeout_s=30, what="notes to report not ready"
        )

        suite.mongo.start()
        wait_until(
            lambda: _ready(suite.intake.url) and _ready(suite.notes.url),
            timeout_s=60,
            what="recovery",
        )
        after = asyncio.run(post_calls(suite.intake.url, number, total=50, rate_per_s=100))
        assert len(after.accepted) == 50
        wait_until(lambda: _note_count(suite) == 100, timeout_s=90, what="every note")
        with _mongo(suite) as mongo:
            notes = [d["call_id"] for d in mongo["notes"]["notes"].find({}, {"call_id": 1})]
        assert set(notes) == set(first.accepted) | set(after.accepted)

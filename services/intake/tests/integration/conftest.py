"""Fixtures of the intake integration tests: a running intake app on the session's real servers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pymongo import AsyncMongoClient

from switchboard_contracts.topics import CALL_RECEIVED, CONSENT_CHANGED, TENANT_CHANGED
from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import MODE_VARIABLE, ServerEndpoints
from switchboard_platform.testing.tokens import auth_header

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@pytest.fixture
def intake_settings(servers: ServerEndpoints, mongo_db_name: str) -> IntakeSettings:
    """Settings pointing at the session's broker and a fresh database."""
    return IntakeSettings(
        kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
        mongodb_url=servers.mongodb_url,
        mongodb_database=f"intake_{mongo_db_name}",
        kafka_fetch_max_wait_ms=20,
        outbox_poll_interval_s=0.05,
        environment="test",
        tracing="on",
        # an app per test: no consumer groups to join and leave each time (the retention
        # participant is proven in services/retention's tests)
        retention_participant=False,
    )


@pytest.fixture
async def intake(
    intake_settings: IntakeSettings, events: EventTap
) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of a started intake app (outbox relay running); the tap listens first."""
    async with running_app(create_app(intake_settings)) as client:
        yield client


@pytest.fixture
async def db(intake_settings: IntakeSettings) -> AsyncIterator[Any]:
    """The intake app's own database, to check what was (not) stored."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        intake_settings.mongodb_url, tz_aware=True
    )
    yield client[intake_settings.mongodb_database]
    await client.close()


class EventTap:
    """Every record published to intake's topics since the tap started, raw as on the wire."""

    topics = (TENANT_CHANGED, CALL_RECEIVED, CONSENT_CHANGED)

    def __init__(self, bootstrap_servers: str) -> None:
        self.records: list[Record] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
        )

    async def start(self) -> None:
        """Start reading at the current end of each topic: older records are other tests'."""
        await self._consumer.start()
        await self._consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in self._consumer.partitions_for_topic(topic) or ()
        ]
        self._consumer.assign(partitions)
        for partition, offset in (await self._consumer.end_offsets(partitions)).items():
            self._consumer.seek(partition, offset)

    async def stop(self) -> None:
        """Close the consumer."""
        await self._consumer.stop()

    async def first(
        self, topic: str, key: str, where: Callable[[Record], bool] = lambda r: True
    ) -> Record:
        """Read until a record of `topic` keyed `key` (and matching `where`) arrived; return it."""
        async with asyncio.timeout(15.0):
            while True:
                for record in self.of(topic, key):
                    if where(record):
                        return record
                for batch in (await self._consumer.getmany(timeout_ms=100)).values():
                    self.records.extend(batch)

    async def settle(self, seconds: float = 0.5) -> None:
        """Keep reading for a while, so a record that should not come has had time to."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            for batch in (await self._consumer.getmany(timeout_ms=100)).values():
                self.records.extend(batch)

    def of(self, topic: str, key: str) -> list[Record]:
        """The records read so far on `topic` whose key is `key` (a tenant id)."""
        return [r for r in self.records if r.topic == topic and r.key == key.encode()]


@pytest.fixture
async def events(servers: ServerEndpoints) -> AsyncIterator[EventTap]:
    """A tap on intake's topics, started before the test acts."""
    tap = EventTap(servers.kafka_bootstrap_servers)
    await tap.start()
    yield tap
    await tap.stop()


OPERATOR = auth_header("operator", sub="operator-1")
AGENT = auth_header("agent", sub="agent-7")


@pytest.fixture
def operator() -> dict[str, str]:
    """Headers of an operator."""
    return OPERATOR


@pytest.fixture
def agent() -> dict[str, str]:
    """Headers of an agent whose token subject is `agent-7`."""
    return AGENT


TenantFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def create_tenant(intake: httpx.AsyncClient) -> TenantFactory:
    """Onboard a tenant through the API (overriding any field); returns its id."""

    async def create(**fields: Any) -> str:
        body = {"name": "Kanzlei Meyer", "industry": "law", **fields}
        response = await intake.post("/v1/tenants", json=body, headers=OPERATOR)
        assert response.status_code == 201, response.text
        tenant_id: str = response.json()["id"]
        return tenant_id

    return create


@pytest.fixture
def call_body() -> Callable[..., dict[str, Any]]:
    """A valid `POST /v1/calls` body, with any field overridden."""

    def body(**fields: Any) -> dict[str, Any]:
        return {
            "caller": {"name": "Erika Mustermann", "phone": "0170 1234567", "company": "ACME"},
            "concern": "Bitte um Rückruf wegen des Mietvertrags",
            "contact_person": "Dr. Weber",
            "started_at": "2025-03-04T10:15:00+01:00",
            "duration_seconds": 95,
            **fields,
        }

    return body


@pytest.fixture
def nx_deviation(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Mark this test as expected to fail on the embedded nx-27017 server, for `reason`.

    The test asserts what MongoDB does; strict, so it reports when nx-27017 catches up.
    """

    def expect_failure_on_embedded(reason: str) -> None:
        if os.environ.get(MODE_VARIABLE, "embedded").strip().lower() in ("", "embedded"):
            request.applymarker(pytest.mark.xfail(reason=f"nx-27017: {reason}", strict=True))

    return expect_failure_on_embedded

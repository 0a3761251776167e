"""Intake pushes back (503 + Retry-After) while notes' consumer group is far behind (issue 7)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from switchboard_contracts import encode, make_event
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.samples import sample_payload
from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header

LIMIT = 20
GROUP = f"bp-{uuid.uuid4().hex[:8]}.call.received"


@pytest.fixture(scope="module")
async def intake(servers: ServerEndpoints) -> AsyncIterator[httpx.AsyncClient]:
    settings = service_settings(
        IntakeSettings,
        servers,
        f"intake_bp_{uuid.uuid4().hex[:8]}",
        max_downstream_lag=LIMIT,
        backpressure_groups=GROUP,
    )
    async with running_app(create_app(settings)) as client:
        yield client


async def _commit_group_at_end(servers: ServerEndpoints) -> None:
    """The watched group has handled everything on the topic so far."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers.kafka_bootstrap_servers, group_id=GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition("call.received", p)
            for p in consumer.partitions_for_topic("call.received") or ()
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


async def _capture(intake: httpx.AsyncClient, number: str) -> httpx.Response:
    body = {
        "dialed_number": number,
        "caller": {"name": "Erika Mustermann", "phone": "0170 1234567"},
        "concern": "Rückruf",
        "started_at": "2026-03-04T10:15:00+01:00",
    }
    return await intake.post("/v1/calls", json=body, headers=auth_header("agent"))


async def _until(intake: httpx.AsyncClient, number: str, status: int) -> httpx.Response:
    for _ in range(60):
        reply = await _capture(intake, number)
        if reply.status_code == status:
            return reply
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {status}; last answer {reply.status_code} {reply.text}")


async def test_captures_answer_503_with_retry_after_while_notes_is_far_behind_then_201_again(
    intake: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    number = "+4924177700001"
    tenant = await intake.post(
        "/v1/tenants",
        json={
            "name": "X",
            "industry": "other",
            "contract_status": "active",
            "forwarding_numbers": [number],
        },
        headers=auth_header("operator"),
    )
    assert tenant.status_code == 201
    await _commit_group_at_end(servers)
    await _until(intake, number, 201)
    tenant_id = f"bp-{uuid.uuid4().hex[:6]}"
    events: list[Any] = [
        make_event(
            sample_payload(CallReceived, tenant_id=tenant_id, call_id=uuid.uuid4().hex),
            tenant_id=tenant_id,
            source="/test",
        )
        for _ in range(LIMIT * 2)
    ]
    await produce(servers.kafka_bootstrap_servers, [encode(e) for e in events])
    refused = await _until(intake, number, 503)
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert (await intake.get("/metrics")).text.count(GROUP) >= 1
    unauthenticated = await intake.post("/v1/calls", json={})
    assert unauthenticated.status_code == 401  # the load is no one else's business
    await _commit_group_at_end(servers)
    await _until(intake, number, 201)

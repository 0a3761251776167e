"""Run intake and notes as real processes on dedicated servers, and drive calls at them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.tokens import auth_header


@dataclass
class Suite:
    """Dedicated broker, database server and the two service processes."""

    kafka: EmbeddedKafka
    mongo: EmbeddedMongo
    intake: ServiceProcess
    notes: ServiceProcess


@contextmanager
def running_suite(log_dir: Path, *, mongo_data_dir: Path | None = None) -> Iterator[Suite]:
    """Fresh servers and services; everything is stopped afterwards.

    With `mongo_data_dir` the database server keeps its data on disk, so it can be
    stopped and started again without losing it.
    """
    with (
        EmbeddedKafka(topics=ALL_TOPICS) as kafka,
        EmbeddedMongo(data_dir=mongo_data_dir) as mongo,
    ):

        def service(name: str, module: str) -> ServiceProcess:
            return ServiceProcess(
                name,
                module,
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                mongodb_url=mongo.url,
                log_dir=log_dir,
                database=name,
            )

        intake = service("intake", "switchboard_intake")
        notes = service("notes", "switchboard_notes")
        with intake, notes:
            yield Suite(kafka, mongo, intake, notes)


def create_tenant(intake_url: str, number: str) -> str:
    """Onboard a tenant owning forwarding number `number`; return its id."""
    response = httpx.post(
        f"{intake_url}/v1/tenants",
        headers=auth_header("operator"),
        json={
            "name": f"Kanzlei {uuid.uuid4().hex[:6]}",
            "industry": "other",
            "contract_status": "active",
            "forwarding_numbers": [number],
        },
        timeout=10,
    )
    response.raise_for_status()
    tenant_id: str = response.json()["id"]
    return tenant_id


@dataclass
class LoadResult:
    """What the load generator saw: accepted call ids and refused attempts."""

    accepted: dict[str, str] = field(default_factory=dict)  # call id -> tenant id
    refused: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)  # refusals by status code


async def post_calls(
    intake: ServiceProcess, number: str, *, total: int, rate_per_s: float
) -> LoadResult:
    """Post `total` calls at a steady rate; count 201s, refusals and connection errors."""
    result = LoadResult()
    headers = auth_header("agent", sub="agent-load")
    interval = 1.0 / rate_per_s
    started = time.monotonic()
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one(i: int) -> None:
            body = {
                "dialed_number": number,
                "caller": {"name": f"Caller {i}", "phone": "+4915211014450"},
                "concern": f"Rückruf erbeten ({i})",
                "started_at": datetime.now(UTC).isoformat(),
            }
            try:
                response = await client.post(f"{intake.url}/v1/calls", json=body, headers=headers)
            except httpx.HTTPError:
                result.errors += 1
                return
            if response.status_code == 201:
                data = response.json()
                result.accepted[data["id"]] = data["tenant_id"]
            else:
                result.refused += 1
                code = response.status_code
                result.statuses[code] = result.statuses.get(code, 0) + 1

        tasks = []
        for i in range(total):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return result

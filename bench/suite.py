"""The suite under test: dedicated embedded servers and intake and notes as real processes.

The same shape as `tests/crash/suite.py`, plus per-run environment (knobs, experiment
patches) for the service processes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.tokens import auth_header

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICES = (("intake", "switchboard_intake"), ("notes", "switchboard_notes"))


@dataclass
class Servers:
    """The dedicated broker and database server of one benchmark run."""

    kafka: EmbeddedKafka
    mongo: EmbeddedMongo


@contextmanager
def running_servers() -> Iterator[Servers]:
    """Fresh embedded Kafka (all contract topics) and MongoDB; stopped afterwards."""
    with EmbeddedKafka(topics=ALL_TOPICS) as kafka, EmbeddedMongo() as mongo:
        yield Servers(kafka, mongo)


@contextmanager
def running_services(
    servers: Servers, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[dict[str, ServiceProcess]]:
    """Start intake and notes (ready), yield them by name, SIGTERM them afterwards."""
    extra = dict(env or {})
    with ExitStack() as stack:
        services = {}
        for name, module in SERVICES:
            process = ServiceProcess(
                name,
                module,
                kafka_bootstrap_servers=servers.kafka.bootstrap_servers,
                mongodb_url=servers.mongo.url,
                log_dir=log_dir,
                database=name,
                extra_env=extra,
            )
            services[name] = stack.enter_context(process)
        yield services


def create_tenant(intake_url: str, number: str) -> str:
    """Onboard a tenant owning forwarding number `number`; return its id."""
    response = httpx.post(
        f"{intake_url}/v1/tenants",
        headers=auth_header("operator", sub="bench-operator"),
        json={
            "name": f"Bench {uuid.uuid4().hex[:6]}",
            "industry": "other",
            "contract_status": "active",
            "forwarding_numbers": [number],
        },
        timeout=10,
    )
    response.raise_for_status()
    tenant_id: str = response.json()["id"]
    return tenant_id


def tenant_numbers(count: int) -> list[str]:
    """`count` distinct German landline numbers for bench tenants."""
    return [f"+49241123456{i:02d}" for i in range(count)]

"""The suite as real processes on dedicated embedded servers: for crash tests and `bench/`.

One place starts a broker and a database, N replicas of each service (`python -m`, as the
image runs), onboards tenants and drives calls at intake; `tests/crash` and `bench/` both
use it, so what the benchmark measures is what the crash tests prove.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx

from switchboard_contracts.topics import ALL_TOPICS, EVENT_TOPICS
from switchboard_dev.services import SERVICES
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo
from switchboard_platform.kafka_admin import ensure_topics
from switchboard_platform.testing.kafka import start_groups_at_log_end
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.tokens import auth_header

MODULES = {s.name: s.module for s in SERVICES}


class KafkaServer(Protocol):
    """A broker the suite runs on: where it listens, and its process if it is ours."""

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def pid(self) -> int | None: ...


class MongoServer(Protocol):
    """A database server the suite runs on: its URL, and its process if it is ours."""

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class ExternalKafka:
    """A broker someone else runs (a real Kafka cluster): no process of ours to measure."""

    bootstrap_servers: str
    pid: None = None


@dataclass(frozen=True)
class ExternalMongo:
    """A database server someone else runs (a real MongoDB)."""

    url: str
    pid: None = None


@dataclass
class Servers:
    """The broker and database server of one run, and the prefix of its databases' and
    consumer groups' names (empty on fresh embedded servers; a fresh one per run on
    external servers, which keep what earlier runs left)."""

    kafka: KafkaServer
    mongo: MongoServer
    database_prefix: str = ""


@contextmanager
def running_servers(*, mongo_data_dir: Path | None = None) -> Iterator[Servers]:
    """Fresh embedded Kafka (all contract topics) and MongoDB; stopped afterwards.

    With `mongo_data_dir` the database keeps its data on disk across a stop and start.
    """
    with EmbeddedKafka(topics=ALL_TOPICS) as kafka, EmbeddedMongo(data_dir=mongo_data_dir) as mongo:
        yield Servers(kafka, mongo)


@contextmanager
def external_servers(bootstrap_servers: str, mongodb_url: str) -> Iterator[Servers]:
    """A Kafka and a MongoDB that run elsewhere (the contract topics created if missing,
    with one replica: a cluster that wants more creates them beforehand); this run's
    databases and consumer groups are named `run<id>_<service>…`, so each run starts
    empty and at the topics' start."""
    asyncio.run(ensure_topics(bootstrap_servers, ALL_TOPICS))
    yield Servers(
        ExternalKafka(bootstrap_servers),
        ExternalMongo(mongodb_url),
        database_prefix=f"run{uuid.uuid4().hex[:8]}_",
    )


@dataclass
class Suite:
    """Servers and the replicas of each service, by service name."""

    servers: Servers
    replicas: dict[str, list[ServiceProcess]]

    @property
    def kafka(self) -> EmbeddedKafka:
        """The broker (embedded: `running_suite` starts its own)."""
        assert isinstance(self.servers.kafka, EmbeddedKafka)
        return self.servers.kafka

    @property
    def mongo(self) -> EmbeddedMongo:
        """The database server (embedded)."""
        assert isinstance(self.servers.mongo, EmbeddedMongo)
        return self.servers.mongo

    @property
    def intake(self) -> ServiceProcess:
        """The first intake replica."""
        return self.replicas["intake"][0]

    @property
    def notes(self) -> ServiceProcess:
        """The first notes replica."""
        return self.replicas["notes"][0]

    def processes(self) -> list[ServiceProcess]:
        """Every service process."""
        return [p for group in self.replicas.values() for p in group]


def service_processes(
    servers: Servers,
    log_dir: Path,
    replicas: Mapping[str, int],
    env: Mapping[str, str] | None = None,
) -> dict[str, list[ServiceProcess]]:
    """Replica processes (not started): `<service>-<i>`, each on its own port, sharing the
    service's database; static group membership with one instance id per replica when
    `KAFKA_GROUP_INSTANCE_ID` is set in `env` (it is then used as a prefix)."""
    groups: dict[str, list[ServiceProcess]] = {}
    base_env = dict(env or {})
    instance_prefix = base_env.pop("KAFKA_GROUP_INSTANCE_ID", None)
    for name, count in replicas.items():
        groups[name] = []
        for i in range(count):
            replica_env = dict(base_env)
            if servers.database_prefix:  # on servers that keep earlier runs' groups too
                replica_env["KAFKA_CONSUMER_GROUP_PREFIX"] = f"{servers.database_prefix}{name}"
            if instance_prefix:
                replica_env["KAFKA_GROUP_INSTANCE_ID"] = f"{instance_prefix}-{name}-{i}"
            groups[name].append(
                ServiceProcess(
                    f"{name}-{i}",
                    MODULES[name],
                    service=name,
                    kafka_bootstrap_servers=servers.kafka.bootstrap_servers,
                    mongodb_url=servers.mongo.url,
                    log_dir=log_dir,
                    database=f"{servers.database_prefix}{name}",
                    extra_env=replica_env,
                )
            )
    return groups


@contextmanager
def running_services(
    servers: Servers,
    log_dir: Path,
    replicas: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[dict[str, list[ServiceProcess]]]:
    """Start the replicas (each ready), yield them by service, SIGTERM them afterwards."""
    replicas = replicas or {"intake": 1, "notes": 1}
    if servers.database_prefix:  # the run's own groups start at the end of the topics
        asyncio.run(_start_groups_at_log_end(servers, replicas))
    groups = service_processes(servers, log_dir, replicas, env)
    with ExitStack() as stack:
        for process in itertools.chain.from_iterable(groups.values()):
            process.start(wait_ready=False)
            stack.callback(process.terminate)
        for process in itertools.chain.from_iterable(groups.values()):
            process.wait_ready()
        yield groups


async def _start_groups_at_log_end(servers: Servers, services: Iterable[str]) -> None:
    """Commit the end of every contract topic for each service's groups of this run: on
    servers that hold earlier events, the run's services read only the run's own."""
    await start_groups_at_log_end(
        servers.kafka.bootstrap_servers,
        [(t, f"{servers.database_prefix}{name}.{t}") for name in services for t in EVENT_TOPICS],
    )


@contextmanager
def running_suite(
    log_dir: Path,
    *,
    replicas: Mapping[str, int] | None = None,
    mongo_data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Suite]:
    """Fresh servers and services; everything is stopped afterwards."""
    with (
        running_servers(mongo_data_dir=mongo_data_dir) as servers,
        running_services(servers, log_dir, replicas, env) as groups,
    ):
        yield Suite(servers, groups)


def create_tenant(
    intake_url: str, number: str, *, recipients: Sequence[Mapping[str, str]] = ()
) -> str:
    """Onboard an active tenant owning forwarding number `number`; return its id."""
    response = httpx.post(
        f"{intake_url}/v1/tenants",
        headers=auth_header("operator", sub="suite-operator"),
        json={
            "name": f"Kanzlei {uuid.uuid4().hex[:6]}",
            "industry": "other",
            "contract_status": "active",
            "forwarding_numbers": [number],
            "recipients": list(recipients),
        },
        timeout=10,
    )
    response.raise_for_status()
    tenant_id: str = response.json()["id"]
    return tenant_id


def tenant_numbers(count: int) -> list[str]:
    """`count` distinct German landline numbers for test tenants."""
    return [f"+49241123456{i:02d}" for i in range(count)]


@dataclass(frozen=True)
class Accepted:
    """One call intake answered 201: its id, tenant, and when it was sent and answered."""

    call_id: str
    tenant_id: str
    sent_at: float
    accepted_at: float


@dataclass
class LoadResult:
    """What the load generator saw: accepted calls and refused attempts."""

    calls: list[Accepted] = field(default_factory=list)
    refused: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)  # refusals by status code

    @property
    def accepted(self) -> dict[str, str]:
        """Call id → tenant id of every accepted call."""
        return {c.call_id: c.tenant_id for c in self.calls}


RETRY_PAUSE_S = 0.5
RETRY_FOR_S = 10.0


async def post_calls(
    intake_urls: str | Sequence[str],
    numbers: str | Sequence[str],
    *,
    total: int,
    rate_per_s: float,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Post `total` calls at a steady rate, round-robin over intake replicas and numbers.

    As an agent's client behind a load balancer would: a call whose connection fails is
    sent again, with the same Idempotency-Key, to the next replica (a lost 201 then
    answers the first call, so nothing is captured twice); when every replica failed, again
    after `RETRY_PAUSE_S`, until `RETRY_FOR_S` after the first try (a restarting intake).
    """
    urls = [intake_urls] if isinstance(intake_urls, str) else list(intake_urls)
    dialed = [numbers] if isinstance(numbers, str) else list(numbers)
    result = LoadResult()
    headers = auth_header("agent", sub="agent-load")
    interval = 1.0 / rate_per_s
    started = time.monotonic()
    # At most as many calls in flight as the pool has connections: httpcore's pool costs
    # CPU per queued request on every assignment, and a few hundred queued (while replicas
    # restart) kept this process busy enough to starve the suite on 2 cores.
    in_flight = 50
    limits = httpx.Limits(max_connections=in_flight)
    slots = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def one(i: int) -> None:
            async with slots:
                await _one(i)

        async def _one(i: int) -> None:
            body = {
                "dialed_number": dialed[i % len(dialed)],
                "caller": {"name": f"Caller {i}", "phone": "+4915211014450"},
                "concern": f"Rückruf erbeten ({i})",
                "started_at": datetime.now(UTC).isoformat(),
            }
            sent = time.monotonic()
            retry_headers = {**headers, "Idempotency-Key": f"load-{uuid.uuid4().hex}"}
            response = None
            attempt = 0
            while response is None:
                url = urls[(i + attempt) % len(urls)]
                attempt += 1
                try:
                    response = await client.post(
                        f"{url}/v1/calls", json=body, headers=retry_headers
                    )
                except httpx.HTTPError:
                    if time.monotonic() - sent > RETRY_FOR_S:
                        break
                    if attempt % len(urls) == 0:
                        await asyncio.sleep(RETRY_PAUSE_S)
            if response is None:
                result.errors += 1
                return
            if response.status_code == 201:
                data = response.json()
                result.calls.append(Accepted(data["id"], data["tenant_id"], sent, time.monotonic()))
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


def causal_order_violations(
    calls: Sequence[Accepted], published: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Pairs (a, b) of one tenant where b was sent after a's 201 but published before a.

    `published` is (tenant id, call id) in `note.created` order, first occurrence counted.
    Calls in flight at the same time have no order, so only causally ordered pairs count.
    """
    position: dict[str, int] = {}
    for index, (_, call_id) in enumerate(published):
        position.setdefault(call_id, index)
    by_tenant: dict[str, list[Accepted]] = {}
    for call in calls:
        by_tenant.setdefault(call.tenant_id, []).append(call)
    violations = []
    for tenant_calls in by_tenant.values():
        ordered = sorted(tenant_calls, key=lambda c: c.accepted_at)
        for i, first in enumerate(ordered):
            for later in ordered[i + 1 :]:
                if later.sent_at <= first.accepted_at:
                    continue
                a, b = position.get(first.call_id), position.get(later.call_id)
                if a is not None and b is not None and b < a:
                    violations.append((first.call_id, later.call_id))
    return violations

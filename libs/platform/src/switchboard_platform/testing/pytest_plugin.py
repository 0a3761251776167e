"""Pytest plugin: one Kafka and one MongoDB per test session, chosen by SWITCHBOARD_TEST_SERVERS.

`embedded` (default) starts Tansu and nx-27017 on free ports; `containers` starts Apache
Kafka (KRaft) and MongoDB with testcontainers; `external` uses KAFKA_BOOTSTRAP_SERVERS and
MONGODB_URL. Every mode creates all contract topics before the first test.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo
from switchboard_platform.kafka_admin import ensure_topics

__all__ = ["ServerEndpoints", "embedded_kafka", "mongo_db_name", "servers"]

ServerMode = Literal["embedded", "containers", "external"]
MODE_VARIABLE = "SWITCHBOARD_TEST_SERVERS"
KAFKA_IMAGE_VARIABLE = "SWITCHBOARD_TEST_KAFKA_IMAGE"
MONGO_IMAGE_VARIABLE = "SWITCHBOARD_TEST_MONGO_IMAGE"
DEFAULT_KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"  # Apache Kafka 3.6, run in KRaft mode
DEFAULT_MONGO_IMAGE = "mongo:7.0"
_ALREADY_INITIALIZED = 23


@dataclass(frozen=True)
class ServerEndpoints:
    """Where the session's Kafka and MongoDB listen."""

    kafka_bootstrap_servers: str
    mongodb_url: str


@dataclass(frozen=True)
class _Session:
    endpoints: ServerEndpoints
    kafka: EmbeddedKafka | None


def _mode() -> ServerMode:
    mode = os.environ.get(MODE_VARIABLE, "embedded").strip().lower() or "embedded"
    if mode not in get_args(ServerMode):
        pytest.fail(
            f"{MODE_VARIABLE}={mode!r}: choose one of {', '.join(get_args(ServerMode))}",
            pytrace=False,
        )
    return cast(ServerMode, mode)


def _embedded(stack: ExitStack) -> _Session:
    kafka = stack.enter_context(EmbeddedKafka(topics=ALL_TOPICS))
    mongo = stack.enter_context(EmbeddedMongo())
    return _Session(ServerEndpoints(kafka.bootstrap_servers, mongo.url), kafka)


def _external() -> _Session:
    missing = [v for v in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL") if not os.environ.get(v)]
    if missing:
        pytest.fail(f"{MODE_VARIABLE}=external needs {' and '.join(missing)} set", pytrace=False)
    endpoints = ServerEndpoints(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URL"])
    return _Session(endpoints, None)


def _containers(stack: ExitStack) -> _Session:
    try:
        from testcontainers.core.container import DockerContainer
    except ImportError as exc:
        pytest.fail(
            f"{MODE_VARIABLE}=containers needs the extra: uv sync --all-packages "
            f"--all-extras ({exc})",
            pytrace=False,
        )
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before 4.13 kept its modules at the top level
        from testcontainers.kafka import KafkaContainer
    try:
        kafka_image = os.environ.get(KAFKA_IMAGE_VARIABLE, DEFAULT_KAFKA_IMAGE)
        kafka: Any = stack.enter_context(KafkaContainer(kafka_image).with_kraft())
        # A one-node replica set, as in docker-compose, so transactions and change streams work.
        mongo_image = os.environ.get(MONGO_IMAGE_VARIABLE, DEFAULT_MONGO_IMAGE)
        mongo: Any = stack.enter_context(
            DockerContainer(mongo_image)
            .with_command("--replSet rs0 --bind_ip_all")
            .with_exposed_ports(27017)
        )
        host, port = mongo.get_container_host_ip(), mongo.get_exposed_port(27017)
    except Exception as exc:
        pytest.fail(
            f"{MODE_VARIABLE}=containers could not start containers: is a Docker engine "
            f"running and are the images reachable? ({type(exc).__name__}: {exc})",
            pytrace=False,
        )
    mongodb_url = f"mongodb://{host}:{port}/?directConnection=true"
    _initiate_replica_set(mongodb_url)
    return _Session(ServerEndpoints(kafka.get_bootstrap_server(), mongodb_url), None)


def _initiate_replica_set(mongodb_url: str, timeout: float = 60.0) -> None:
    """Initiate the one-member replica set `rs0` and wait until it is writable."""
    config = {"_id": "rs0", "members": [{"_id": 0, "host": "localhost:27017"}]}
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url, serverSelectionTimeoutMS=1000)
    deadline = time.monotonic() + timeout
    initiated = False
    try:
        while time.monotonic() < deadline:
            try:
                if not initiated:
                    client.admin.command("replSetInitiate", config)
                    initiated = True
                if client.admin.command("hello").get("isWritablePrimary"):
                    return
            except OperationFailure as exc:
                initiated = initiated or exc.code == _ALREADY_INITIALIZED
            except PyMongoError:
                pass
            time.sleep(0.5)
    finally:
        client.close()
    pytest.fail(f"MongoDB container at {mongodb_url} had no writable primary", pytrace=False)


def _run_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` on a private loop in a worker thread, leaving pytest-asyncio's loop alone."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def _switchboard_session() -> Iterator[_Session]:
    """Start (or find) the session's servers and create the contract topics."""
    mode = _mode()
    with ExitStack() as stack:
        if mode == "embedded":
            session = _embedded(stack)
        elif mode == "containers":
            session = _containers(stack)
        else:
            session = _external()
        _run_coroutine(ensure_topics(session.endpoints.kafka_bootstrap_servers, ALL_TOPICS))
        yield session


@pytest.fixture(scope="session")
def servers(_switchboard_session: _Session) -> ServerEndpoints:
    """The Kafka bootstrap servers and MongoDB URL every test of the session shares."""
    return _switchboard_session.endpoints


@pytest.fixture(scope="session")
def embedded_kafka(_switchboard_session: _Session) -> EmbeddedKafka | None:
    """The session's embedded broker, to stop and restart in crash tests; None in other modes.

    `restart()` brings it back on the same port with every contract topic, but empty.
    """
    return _switchboard_session.kafka


@pytest.fixture
def mongo_db_name(request: pytest.FixtureRequest) -> str:
    """A suffix for database names that is unique to this test, e.g. `notes_<suffix>`."""
    readable = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:24]
    return f"{readable}_{uuid.uuid4().hex[:8]}"

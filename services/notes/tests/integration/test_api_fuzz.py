"""Schemathesis over the notes API, as a real process, with every role (issue 8, "Proof")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.testing.api_fuzz import (
    DEEP_ROLES,
    SHALLOW_EXAMPLES,
    SHALLOW_ROLES,
    call_and_check,
    load_schema,
)
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

schema = load_schema(create_app(NotesSettings(environment="test")))
TENANT = "fuzz-tenant"


@pytest.fixture(scope="module")
def notes_process(
    servers: ServerEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        "notes",
        "switchboard_notes",
        kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
        mongodb_url=servers.mongodb_url,
        log_dir=Path(tmp_path_factory.mktemp("fuzz")),
        database="notes_fuzz",
        extra_env={"KAFKA_CONSUMER_GROUP_PREFIX": "notes-fuzz"},
    ) as process:
        yield process


@pytest.mark.parametrize("role", DEEP_ROLES)
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_answer_is_a_5xx_and_every_answer_is_documented(
    case: Any, role: str, notes_process: ServiceProcess
) -> None:
    call_and_check(case, notes_process.url, role, TENANT)


@pytest.mark.parametrize("role", SHALLOW_ROLES)
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=SHALLOW_EXAMPLES)
def test_refused_roles_get_documented_answers_too(
    case: Any, role: str, notes_process: ServiceProcess
) -> None:
    call_and_check(case, notes_process.url, role, TENANT)

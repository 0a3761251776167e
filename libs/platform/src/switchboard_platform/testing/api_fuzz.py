"""Schemathesis over a service's real HTTP API, for `make test` (issue 8, "Proof").

Each service has one test module that loads its OpenAPI document (from an app object that is
never started: building it connects nothing), starts the service as a real process on the
session's servers, and sends every operation generated inputs — valid and invalid — as
each role. The checks: no answer is a 5xx, every status code and content type is the
document's, and every body matches the documented schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .processes import ServiceProcess
from .pytest_plugin import ServerEndpoints
from .tokens import auth_header

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
DEEP_EXAMPLES = 8
SHALLOW_EXAMPLES = 3
ROLES: Mapping[str, tuple[str, ...]] = {
    "operator": ("operator",),
    "client": ("client",),
    "agent": ("agent",),
    "client+agent": ("client", "agent"),
    "anonymous": (),
}
DEEP_ROLES = ("operator", "client")
"""Roles whose requests reach the use cases: many examples each."""
SHALLOW_ROLES = ("agent", "client+agent", "anonymous")
"""Roles refused by most routes (403/401): a few examples each prove that stays so."""


def load_schema(app: FastAPI, *, max_examples: int = DEEP_EXAMPLES) -> Any:
    """The app's OpenAPI document as a Schemathesis schema: positive and negative inputs."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.generation.update(
        modes=list(GenerationMode), max_examples=max_examples, deterministic=True
    )
    return schema


def headers_for(role: str, tenant: str) -> dict[str, str]:
    """The Authorization header of a caller in `role` (a client of `tenant`), or none."""
    roles = ROLES[role]
    if not roles:
        return {}
    return auth_header(*roles, tenant=tenant if "client" in roles else None)


def call_and_check(
    case: Any,
    base_url: str,
    role: str,
    tenant: str,
    prepare: Callable[[Any], None] | None = None,
) -> None:
    """Send one generated case as `role` and check the answer against the document.

    `prepare` may adjust the case first (e.g. point generated URLs at this machine, so
    fuzzing never makes a service look up or call a host elsewhere).
    """
    if prepare is not None:
        prepare(case)
    response = case.call(base_url=base_url, headers=headers_for(role, tenant), timeout=30)
    case.validate_response(response, checks=CHECKS)


def fuzz_module(
    service: str,
    module: str,
    app: FastAPI,
    *,
    tenant: str = "fuzz-tenant",
    extra_env: Mapping[str, str] | None = None,
    prepare: Callable[[Any], None] | None = None,
) -> tuple[Any, Any, Any]:
    """A fixture and two tests that fuzz one service; assign them to module-level names.

    ```
    service_process, test_api_fuzz, test_api_fuzz_refused = fuzz_module(
        "notes", "switchboard_notes", create_app(NotesSettings(environment="test"))
    )
    ```
    The service runs as a real process (`python -m <module>`) on the session's servers.
    Operators and clients get `DEEP_EXAMPLES` inputs per operation, the roles most routes
    refuse `SHALLOW_EXAMPLES`.
    """
    import pytest
    from hypothesis import HealthCheck, settings

    schema = load_schema(app)
    env = {"KAFKA_CONSUMER_GROUP_PREFIX": f"{service}-fuzz", **(extra_env or {})}

    @pytest.fixture(scope="module")
    def service_process(
        servers: ServerEndpoints, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[ServiceProcess]:
        with ServiceProcess(
            service,
            module,
            kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
            mongodb_url=servers.mongodb_url,
            log_dir=Path(tmp_path_factory.mktemp("fuzz")),
            database=f"{service.replace('-', '_')}_fuzz",
            extra_env=env,
        ) as process:
            yield process

    def checked(max_examples: int | None) -> Callable[..., Any]:
        def test(case: Any, role: str, service_process: ServiceProcess) -> None:
            call_and_check(case, service_process.url, role, tenant, prepare)

        tuned = settings(deadline=None, suppress_health_check=list(HealthCheck))
        if max_examples is not None:
            tuned = settings(tuned, max_examples=max_examples)
        return tuned(test)

    deep = pytest.mark.parametrize("role", DEEP_ROLES)(schema.parametrize()(checked(None)))
    shallow = pytest.mark.parametrize("role", SHALLOW_ROLES)(
        schema.parametrize()(checked(SHALLOW_EXAMPLES))
    )
    return service_process, deep, shallow

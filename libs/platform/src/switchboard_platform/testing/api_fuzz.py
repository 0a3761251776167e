"""Schemathesis over a service's real HTTP API, for `make test` (issue 8, "Proof").

Each service has one test module that loads its OpenAPI document (from an app object that is
never started: building it connects nothing), starts the service as a real process on the
session's servers, and sends every operation generated inputs — valid and invalid — as
each role. The checks: no answer is a 5xx, every status code and content type is the
document's, and every body matches the documented schema.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def call_and_check(case: Any, base_url: str, role: str, tenant: str) -> None:
    """Send one generated case as `role` and check the answer against the document."""
    response = case.call(base_url=base_url, headers=headers_for(role, tenant), timeout=30)
    case.validate_response(response, checks=CHECKS)

"""A service cannot forget to document the shared error answers (issue 8, "Proof")."""

from __future__ import annotations

from enum import StrEnum

import pytest
from fastapi import APIRouter

from switchboard_platform.http import ResourceId, api_router
from switchboard_platform.runtime import ServiceRuntime
from switchboard_platform.settings import ServiceSettings


class Kind(StrEnum):
    ROUND = "round"


def _runtime() -> ServiceRuntime:
    return ServiceRuntime("docs-test", ServiceSettings(environment="test"))


def test_an_api_router_built_without_the_platform_is_refused_at_start() -> None:
    plain = APIRouter(prefix="/v1/things")

    @plain.get("")
    async def things() -> list[str]:
        return []

    with pytest.raises(RuntimeError, match="api_router"):
        _runtime().create_app(title="t", routers=[plain])


def test_an_api_router_of_the_platform_documents_every_shared_error() -> None:
    router = api_router("/v1/things", tags=["things"])

    @router.get("")
    async def things() -> list[str]:
        return []

    app = _runtime().create_app(title="t", routers=[router])
    responses = app.openapi()["paths"]["/v1/things"]["get"]["responses"]
    assert {"401", "403", "404", "405", "413", "415", "422", "431", "503"} <= set(responses)


def test_an_id_in_a_path_that_is_not_a_resource_id_is_refused_at_start() -> None:
    """Notify's retry route took any length of id (a lookup, 404) while others refused it."""
    router = api_router("/v1/things", tags=["things"])

    @router.get("/{thing_id}")
    async def thing(thing_id: str) -> str:
        return thing_id

    with pytest.raises(RuntimeError, match="ResourceId"):
        _runtime().create_app(title="t", routers=[router])


def test_a_resource_id_or_an_enum_in_a_path_is_taken() -> None:
    router = api_router("/v1/things", tags=["things"])

    @router.get("/{kind}/{thing_id}")
    async def thing(kind: Kind, thing_id: ResourceId) -> str:
        return thing_id

    app = _runtime().create_app(title="t", routers=[router])
    assert "/v1/things/{kind}/{thing_id}" in app.openapi()["paths"]

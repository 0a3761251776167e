"""A service cannot forget to document the shared error answers (issue 8, "Proof")."""

from __future__ import annotations

import pytest
from fastapi import APIRouter

from switchboard_platform.http import api_router
from switchboard_platform.runtime import ServiceRuntime
from switchboard_platform.settings import ServiceSettings


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

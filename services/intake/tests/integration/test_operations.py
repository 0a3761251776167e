"""The operations surface of intake: health, readiness, OpenAPI and AsyncAPI documents."""

from __future__ import annotations


async def test_intake_is_live_and_ready_on_the_real_servers(intake):
    live = await intake.get("/healthz")
    ready = await intake.get("/readyz")

    assert live.json() == {"status": "ok", "service": "intake"}
    assert ready.status_code == 200, ready.text


async def test_openapi_documents_the_tenant_and_call_routes(intake):
    spec = (await intake.get("/openapi.json")).json()

    assert set(spec["paths"]) >= {"/v1/tenants", "/v1/tenants/{tenant_id}", "/v1/calls"}
    assert "secrecy_bound" in spec["components"]["schemas"]["TenantPublic"]["properties"]


async def test_asyncapi_documents_the_topics_intake_publishes(intake):
    spec = (await intake.get("/asyncapi.json")).text

    for topic in ("tenant.changed", "call.received", "consent.changed"):
        assert topic in spec

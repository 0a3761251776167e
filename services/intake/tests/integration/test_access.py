"""Who may do what: 401 without a valid token, 403 for a wrong role, 404 across tenants."""

from __future__ import annotations

import pytest

from switchboard_platform.testing.tokens import auth_header, make_token

TENANT = {"name": "Kanzlei Meyer", "industry": "law", "notes": "vertraulich"}
BAD_TOKENS = {
    "missing": None,
    "expired": make_token("operator", "agent", ttl_s=-60),
    "forged": make_token("operator", "agent", secret="not-the-secret-0123456789abcdefgh"),
    "other audience": make_token("operator", "agent", audience="elsewhere"),
    "garbage": "not-a-jwt",
    "client without tenant": make_token("client"),
}


def _headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


async def _requests(intake, tenant_id, headers, call_body):
    return {
        "create tenant": await intake.post("/v1/tenants", json=TENANT, headers=headers),
        "read tenant": await intake.get(f"/v1/tenants/{tenant_id}", headers=headers),
        "change tenant": await intake.patch(
            f"/v1/tenants/{tenant_id}", json={"notes": "geändert"}, headers=headers
        ),
        "capture call": await intake.post(
            "/v1/calls", json=call_body(tenant_id=tenant_id), headers=headers
        ),
    }


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_r_sec_2_every_endpoint_refuses_a_request_without_a_valid_token(
    intake, create_tenant, call_body, db, token
):
    tenant_id = await create_tenant(**TENANT)

    replies = await _requests(intake, tenant_id, _headers(token), call_body)

    assert {name: r.status_code for name, r in replies.items()} == dict.fromkeys(replies, 401)
    assert all(r.headers["www-authenticate"] == "Bearer" for r in replies.values())
    assert await db.tenants.count_documents({}) == 1
    assert await db.calls.count_documents({}) == 0


ENDPOINTS = ("create tenant", "read tenant", "change tenant", "capture call")
EXPECTED = {
    "operator": (201, 200, 200, 403),
    "agent": (403, 403, 403, 201),
    "own client": (403, 200, 403, 403),
    "other client": (403, 404, 403, 403),
}


@pytest.mark.parametrize(("role", "expected"), EXPECTED.items(), ids=EXPECTED.keys())
async def test_r_sec_2_each_role_reaches_only_its_endpoints(
    intake, create_tenant, call_body, role, expected
):
    tenant_id = await create_tenant(**TENANT)
    headers = {
        "operator": auth_header("operator"),
        "agent": auth_header("agent"),
        "own client": auth_header("client", tenant=tenant_id),
        "other client": auth_header("client", tenant="another-tenant"),
    }[role]

    replies = await _requests(intake, tenant_id, headers, call_body)

    assert {name: r.status_code for name, r in replies.items()} == dict(
        zip(ENDPOINTS, expected, strict=True)
    )


async def test_r_sec_2_client_reading_another_tenant_learns_nothing(intake, create_tenant):
    tenant_id = await create_tenant(**TENANT)
    own = await create_tenant(name="Praxis Schulz", industry="medicine")

    foreign = await intake.get(
        f"/v1/tenants/{tenant_id}", headers=auth_header("client", tenant=own)
    )
    missing = await intake.get(
        "/v1/tenants/0123456789abcdef01234567", headers=auth_header("client", tenant=own)
    )

    assert foreign.status_code == 404
    assert foreign.json() == missing.json()
    assert "Meyer" not in foreign.text
    assert "vertraulich" not in foreign.text


async def test_r_sec_2_refused_writes_store_nothing(intake, call_body, db):
    client = auth_header("client", tenant="t-1")

    await intake.post("/v1/tenants", json=TENANT, headers=auth_header("agent"))
    await intake.post("/v1/calls", json=call_body(tenant_id="t-1"), headers=client)

    assert await db.tenants.count_documents({}) == 0
    assert await db.calls.count_documents({}) == 0

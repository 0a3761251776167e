"""Issue 8 against intake: odd tokens, hostile input, idempotency keys, what is stored as sent.

Each test names what it proves; R-SEC-2 for the tenant rules. They hold on real MongoDB too.
"""

from __future__ import annotations

import json
import time
import unicodedata
from typing import Any

import httpx
import jwt
import pytest

from switchboard_platform.settings import DEV_JWT_SECRET
from switchboard_platform.testing.tokens import auth_header

from .conftest import TenantFactory


def _token(**claims: Any) -> dict[str, str]:
    now = int(time.time())
    payload = {"sub": "x", "aud": "switchboard", "iat": now, "exp": now + 300, **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, DEV_JWT_SECRET, algorithm='HS256')}"}


@pytest.mark.parametrize(
    "roles", [{"operator": False}, {"operator": True}, None, 5, [["operator"]], [], ["root"]]
)
async def test_r_sec_2_an_odd_roles_claim_is_a_401_never_a_500_or_a_way_in(
    intake: httpx.AsyncClient, create_tenant: TenantFactory, roles: object
) -> None:
    tenant = await create_tenant()
    reply = await intake.get(f"/v1/tenants/{tenant}", headers=_token(roles=roles))
    assert reply.status_code == 401
    created = await intake.post(
        "/v1/tenants", json={"name": "X", "industry": "other"}, headers=_token(roles=roles)
    )
    assert created.status_code == 401


async def test_r_sec_2_a_client_who_is_also_an_agent_reads_no_other_tenant(
    intake: httpx.AsyncClient, create_tenant: TenantFactory
) -> None:
    own, other = await create_tenant(), await create_tenant(name="Praxis Nord")
    both = auth_header("client", "agent", tenant=own)
    assert (await intake.get(f"/v1/tenants/{own}", headers=both)).status_code == 200
    assert (await intake.get(f"/v1/tenants/{other}", headers=both)).status_code == 404
    agent_only = auth_header("agent", tenant=own)
    assert (await intake.get(f"/v1/tenants/{own}", headers=agent_only)).status_code == 403


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b'{"name": "X", "industry": "other", "notes": NaN}', "NaN"),
        (b'{"name": "X", "industry": "other", "notes": Infinity}', "Infinity"),
        (b'{"name": "X", "industry": "other", "notes": -Infinity}', "-Infinity"),
        (b'{"name": "\\ud800", "industry": "other"}', "lone surrogate"),
        (b'{"name": "X", "industry": "other", "notes": "a\\udfffb"}', "lone low surrogate"),
    ],
)
async def test_json_that_only_python_reads_is_a_422_on_the_body(
    intake: httpx.AsyncClient, operator: dict[str, str], raw: bytes, what: str
) -> None:
    reply = await intake.post(
        "/v1/tenants", content=raw, headers={**operator, "content-type": "application/json"}
    )
    assert reply.status_code == 422, what
    assert reply.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59"])
async def test_a_time_at_the_edge_of_the_calendar_is_a_422_naming_the_field(
    intake: httpx.AsyncClient, agent: dict[str, str], call_body: Any, moment: str
) -> None:
    body = call_body(started_at=moment, dialed_number="+4924199999999")
    reply = await intake.post("/v1/calls", json=body, headers=agent)
    assert reply.status_code == 422
    assert ["body", "started_at"] in [e["loc"] for e in reply.json()["detail"]]


async def test_a_422_names_field_and_rule_but_never_repeats_the_value(
    intake: httpx.AsyncClient, agent: dict[str, str], call_body: Any
) -> None:
    body = call_body(caller={"name": "Quirin Zauberhold", "phone": "0170 44556677889"})
    body.pop("concern")
    reply = await intake.post("/v1/calls", json=body, headers=agent)
    assert reply.status_code == 422
    text = reply.text
    for secret in ("Zauberhold", "44556677889", "Mietvertrag", "Weber"):
        assert secret not in text
    locs = [e["loc"] for e in reply.json()["detail"]]
    assert ["body", "caller", "phone"] in locs
    assert ["body", "concern"] in locs
    assert all(set(e) == {"loc", "msg", "type"} for e in reply.json()["detail"])


async def test_an_idempotency_key_reused_with_another_body_is_refused_not_answered(
    intake: httpx.AsyncClient, create_tenant: TenantFactory, agent: dict[str, str], call_body: Any
) -> None:
    first_tenant = await create_tenant(forwarding_numbers=["+4924155500001"])
    await create_tenant(name="Praxis Nord", forwarding_numbers=["+4924155500002"])
    key = {"Idempotency-Key": "retry-1", **agent}
    body = call_body(dialed_number="+4924155500001")
    first = await intake.post("/v1/calls", json=body, headers=key)
    again = await intake.post("/v1/calls", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["tenant_id"] == first_tenant
    changed = await intake.post(
        "/v1/calls", json=call_body(dialed_number="+4924155500001", concern="anders"), headers=key
    )
    other_tenant = await intake.post(
        "/v1/calls", json=call_body(dialed_number="+4924155500002"), headers=key
    )
    for reply in (changed, other_tenant):
        assert reply.status_code == 422
        assert reply.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
        assert first.json()["id"] not in reply.text


async def test_names_and_free_text_are_stored_nfc_and_control_characters_refused(
    intake: httpx.AsyncClient,
    create_tenant: TenantFactory,
    agent: dict[str, str],
    call_body: Any,
    db: Any,
) -> None:
    await create_tenant(forwarding_numbers=["+4924155500003"])
    decomposed = unicodedata.normalize("NFD", "Jürgen Öztürk")
    body = call_body(
        dialed_number="+4924155500003", caller={"name": decomposed, "phone": "0170 1234567"}
    )
    reply = await intake.post("/v1/calls", json=body, headers=agent)
    assert reply.status_code == 201
    stored = await db["calls"].find_one({"_id": reply.json()["id"]})
    assert stored["caller"]["name"] == unicodedata.normalize("NFC", "Jürgen Öztürk")
    for bad, field in (
        ("Erika\x00Mustermann", "name"),
        ("Erika \u202eMustermann", "name"),
        ("Erika\x1b[31m", "name"),
    ):
        bad_body = call_body(
            dialed_number="+4924155500003", caller={"name": bad, "phone": "0170 1234567"}
        )
        refused = await intake.post("/v1/calls", json=bad_body, headers=agent)
        assert refused.status_code == 422, bad
        assert ["body", "caller", field] in [e["loc"] for e in refused.json()["detail"]]
    multiline = call_body(dialed_number="+4924155500003", concern="Zeile 1\r\nZeile 2\tEnde")
    kept = await intake.post("/v1/calls", json=multiline, headers=agent)
    assert kept.status_code == 201
    assert (await db["calls"].find_one({"_id": kept.json()["id"]}))[
        "concern"
    ] == "Zeile 1\nZeile 2\tEnde"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/rec.mp3",
        "http://localhost/rec.mp3",
        "http://10.0.0.5/rec.mp3",
        "http://[::1]/rec.mp3",
        "http://[::ffff:169.254.169.254]/x",
        # short, octal and hex IPv4 forms: ipaddress does not parse them, resolvers do
        "http://127.1/rec.mp3",
        "http://0177.0.0.1/rec.mp3",
        "http://0x7f.1/rec.mp3",
        "http://127.000.000.001/rec.mp3",
        "http://10.1/rec.mp3",
        "http://192.168.1/rec.mp3",
        "http://2130706433/rec.mp3",
        "https://user:pw@records.example/rec.mp3",
        "file:///etc/passwd",
    ],
)
async def test_links_to_internal_hosts_are_refused(
    intake: httpx.AsyncClient,
    operator: dict[str, str],
    agent: dict[str, str],
    call_body: Any,
    url: str,
) -> None:
    tenant = await intake.post(
        "/v1/tenants",
        json={"name": "X", "industry": "other", "calendar_links": [url]},
        headers=operator,
    )
    assert tenant.status_code == 422
    assert tenant.json()["detail"][0]["loc"][:2] == ["body", "calendar_links"]
    call = call_body(dialed_number="+4924199999998", recording={"consent": True, "url": url})
    reply = await intake.post("/v1/calls", json=call, headers=agent)
    assert reply.status_code == 422
    assert ["body", "recording", "url"] in [e["loc"] for e in reply.json()["detail"]]


@pytest.mark.parametrize(
    "number", ["+49 900 1234567", "0900 5123456", "+49 180 5123456", "0241 1234567"]
)
async def test_sms_recipients_must_be_mobile_numbers_never_premium_rate(
    intake: httpx.AsyncClient, operator: dict[str, str], number: str
) -> None:
    body = {
        "name": "X",
        "industry": "other",
        "recipients": [{"channel": "sms", "address": number}],
    }
    reply = await intake.post("/v1/tenants", json=body, headers=operator)
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"][:3] == ["body", "recipients", 0]
    assert json.dumps(number) not in reply.text


async def test_a_method_the_path_lacks_is_a_405_that_names_every_method_it_has(
    intake: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    reply = await intake.put("/v1/tenants/some-id", json={}, headers=operator)
    assert reply.status_code == 405
    assert {m.strip() for m in reply.headers["allow"].split(",")} == {"GET", "PATCH"}

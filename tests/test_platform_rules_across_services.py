"""The platform's rules hold in the services built on it: all five.

Each is started as its app (real broker and database of the session) and asked what an
attacker or a careless client would ask: another tenant's data with a client+agent token,
a body too large, a body that is not JSON or not declared as JSON, an id longer than any
id, a HEAD request. R-SEC-2 for the tenant rules. Every answer has the same shape in every
service; what the protocol answers itself (400, 431) is tested over a socket in intake's
`test_http_edges.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.credentials import new_key
from switchboard_crm_sync.main import create_app as create_crm_sync
from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app as create_intake
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app as create_notes
from switchboard_notify.config import NotifySettings
from switchboard_notify.main import create_app as create_notify
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header
from switchboard_retention.config import RetentionSettings
from switchboard_retention.main import create_app as create_retention

OWN, OTHER = "tenant-rules-a", "tenant-rules-b"
CLIENT_AND_AGENT = auth_header("client", "agent", tenant=OWN)

TENANT_READS = [  # (service, path, whether operators name the tenant with ?tenant_id=)
    ("notify", "/v1/deliveries", True),
    ("notify", "/v1/recipients", False),
    ("crm-sync", "/v1/connectors", True),
    ("crm-sync", "/v1/transfers", True),
]
OPERATOR_ONLY = [
    ("retention", "GET", "/v1/sweeps"),
    ("retention", "GET", "/v1/receipts"),
    ("retention", "POST", "/v1/dsr"),
]
WRITES = [
    ("notify", "POST", "/v1/consents", ("client",)),
    ("crm-sync", "PUT", "/v1/connectors/webhook", ("client",)),
    ("retention", "POST", "/v1/sweeps", ("operator",)),
]
EVERY_BODY_ROUTE = [
    *WRITES,
    ("intake", "POST", "/v1/calls", ("agent",)),
    ("intake", "POST", "/v1/tenants", ("operator",)),
    ("notes", "POST", "/v1/notes/n-1/rating", ("client",)),
]
PATH_IDS = [  # (service, method, path with {id}, roles, its parameter)
    ("intake", "GET", "/v1/tenants/{id}", ("operator",), "tenant_id"),
    ("notes", "GET", "/v1/notes/{id}", ("client",), "note_id"),
    ("notes", "DELETE", "/v1/notes/{id}", ("client",), "note_id"),
    ("crm-sync", "POST", "/v1/transfers/{id}/retry?tenant_id=" + OWN, ("operator",), "transfer_id"),
    ("notify", "POST", "/v1/deliveries/{id}/retry", ("operator",), "delivery_id"),
    ("retention", "GET", "/v1/sweeps/{id}", ("operator",), "sweep_id"),
    ("retention", "DELETE", "/v1/holds/{id}", ("operator",), "hold_id"),
    ("retention", "GET", "/v1/dsr/{id}", ("operator",), "request_id"),
]
GETS = [  # (service, path, roles): HEAD answers as GET does, without the body
    ("intake", "/v1/tenants/" + OWN, ("client",)),
    ("notes", "/v1/notes", ("client",)),
    ("notify", "/v1/recipients", ("client",)),
    ("crm-sync", "/v1/connectors", ("client",)),
    ("retention", "/v1/sweeps", ("operator",)),
]


@pytest.fixture(scope="module")
async def apps(servers: ServerEndpoints) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    run = uuid.uuid4().hex[:8]

    def settings(cls: Any, name: str, **values: Any) -> Any:
        database = f"{name.replace('-', '')}_rules_{run}"
        prefix = f"{name}-rules-{run}"
        return service_settings(
            cls, servers, database, kafka_consumer_group_prefix=prefix, **values
        )

    notify = create_notify(settings(NotifySettings, "notify", sender_instance=f"rules-{run}"))
    crm = create_crm_sync(settings(CrmSyncSettings, "crm-sync", credentials_key=new_key()))
    retention = create_retention(settings(RetentionSettings, "retention", sweep_interval_s=0))
    intake = create_intake(settings(IntakeSettings, "intake"))
    notes = create_notes(settings(NotesSettings, "notes"))
    async with (
        running_app(notify) as notify_client,
        running_app(crm) as crm_client,
        running_app(retention) as retention_client,
        running_app(intake) as intake_client,
        running_app(notes) as notes_client,
    ):
        yield {
            "notify": notify_client,
            "crm-sync": crm_client,
            "retention": retention_client,
            "intake": intake_client,
            "notes": notes_client,
        }


@pytest.mark.parametrize(("service", "path", "names_tenant"), TENANT_READS)
async def test_r_sec_2_a_client_and_agent_token_reads_no_other_tenants_data(
    apps: dict[str, httpx.AsyncClient], service: str, path: str, names_tenant: bool
) -> None:
    client = apps[service]
    own = await client.get(path, headers=CLIENT_AND_AGENT)
    assert own.status_code == 200, own.text  # its own tenant, as a client
    other = await client.get(path, params={"tenant_id": OTHER}, headers=CLIENT_AND_AGENT)
    if names_tenant:
        assert other.status_code == 404, other.text
    else:  # the parameter is not the route's: the client's own answer, nothing else
        assert other.json() == own.json(), other.text
    assert OTHER not in other.text
    agent_only = await client.get(path, headers=auth_header("agent", tenant=OWN))
    assert agent_only.status_code == 403  # agents capture calls; they read no tenant data


@pytest.mark.parametrize(("service", "method", "path"), OPERATOR_ONLY)
async def test_r_sec_2_operator_routes_refuse_a_client_and_agent_token(
    apps: dict[str, httpx.AsyncClient], service: str, method: str, path: str
) -> None:
    reply = await apps[service].request(method, path, json={}, headers=CLIENT_AND_AGENT)
    assert reply.status_code == 403


@pytest.mark.parametrize(("service", "method", "path", "roles"), WRITES)
async def test_a_body_too_large_is_413_and_one_that_is_not_json_422(
    apps: dict[str, httpx.AsyncClient], service: str, method: str, path: str, roles: tuple[str]
) -> None:
    headers = {**auth_header(*roles, tenant=OWN), "content-type": "application/json"}
    client = apps[service]
    huge = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    too_large = await client.request(method, path, content=huge, headers=headers)
    assert too_large.status_code == 413
    broken = await client.request(method, path, content=b'{"name": "Erika Muster', headers=headers)
    assert broken.status_code == 422
    assert "Erika" not in broken.text  # errors name the place, never echo the input


@pytest.mark.parametrize(("service", "method", "path", "roles"), EVERY_BODY_ROUTE)
async def test_a_body_declared_as_anything_but_json_is_415_naming_the_header(
    apps: dict[str, httpx.AsyncClient], service: str, method: str, path: str, roles: tuple[str]
) -> None:
    client = apps[service]
    for declared in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        headers = {**auth_header(*roles, tenant=OWN), "content-type": declared}
        reply = await client.request(method, path, content=b'{"name": "Erika"}', headers=headers)
        assert reply.status_code == 415, (declared, reply.text)
        assert reply.json()["detail"][0]["loc"] == ["header", "content-type"]
        assert reply.headers["cache-control"] == "no-store"
    # JSON by its structured suffix, or with parameters, is JSON: the route's own rules answer
    for declared in ("application/merge-patch+json", "Application/JSON; charset=utf-8"):
        headers = {**auth_header(*roles, tenant=OWN), "content-type": declared}
        reply = await client.request(method, path, content=b"[]", headers=headers)
        assert reply.status_code == 422, (declared, reply.text)
        assert reply.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize(("service", "method", "path", "roles", "name"), PATH_IDS)
async def test_an_id_longer_than_any_id_is_422_naming_the_path_parameter_in_every_service(
    apps: dict[str, httpx.AsyncClient],
    service: str,
    method: str,
    path: str,
    roles: tuple[str],
    name: str,
) -> None:
    headers = auth_header(*roles, tenant=OWN)
    client = apps[service]
    too_long = await client.request(method, path.format(id="x" * 101), headers=headers)
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["detail"] == [
        {
            "loc": ["path", name],
            "msg": too_long.json()["detail"][0]["msg"],
            "type": "string_too_long",
        }
    ]
    unknown = await client.request(method, path.format(id="x" * 100), headers=headers)
    assert unknown.status_code == 404, unknown.text  # the longest id there can be: looked up


@pytest.mark.parametrize(("service", "path", "roles"), GETS)
async def test_head_answers_as_get_without_a_body(
    apps: dict[str, httpx.AsyncClient], service: str, path: str, roles: tuple[str]
) -> None:
    headers = auth_header(*roles, tenant=OWN)
    client = apps[service]
    got = await client.get(path, headers=headers)
    head = await client.head(path, headers=headers)
    assert head.status_code == got.status_code, got.text
    assert head.content == b""
    for name in ("content-type", "cache-control", "x-content-type-options"):
        assert head.headers[name] == got.headers[name]
    anonymous = await client.head(path)
    assert (anonymous.status_code, anonymous.content) == (401, b"")

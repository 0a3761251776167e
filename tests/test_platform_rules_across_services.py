"""The platform's rules hold in the services built on it: notify, crm-sync and retention.

Each is started as its app (real broker and database of the session) and asked what an
attacker or a careless client would ask: another tenant's data with a client+agent token,
a body too large, a body that is not JSON. R-SEC-2 for the tenant rules.
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
    async with (
        running_app(notify) as notify_client,
        running_app(crm) as crm_client,
        running_app(retention) as retention_client,
    ):
        yield {"notify": notify_client, "crm-sync": crm_client, "retention": retention_client}


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

"""Client-supplied URLs never lead into our network: refused when set and when sending.

This app runs as production would (`CRM_SYNC_ALLOW_PRIVATE_URLS` off); a stand-in DNS
resolver plays the names, so a rebinding (public when set, private when sent) is shown.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest

from switchboard_crm_sync.main import create_app
from switchboard_crm_sync.ssrf import HostUnresolved, IPAddress
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

from .conftest import Vendors, crm_settings
from .helpers import client, note_created, publish, put_connector, tenant, tenant_changed, transfers

NAMES: dict[str, list[str]] = {
    "hooks.example.com": ["93.184.216.34"],
    "rebind.example.com": ["93.184.216.34"],
    "inside.example.com": ["93.184.216.34", "10.0.0.7"],
    "acme.my.salesforce.com": ["169.254.169.254"],
}


async def resolver(host: str, port: int) -> list[IPAddress]:
    """DNS as the test says."""
    if host not in NAMES:
        raise HostUnresolved("host name does not resolve")
    return [ipaddress.ip_address(a) for a in NAMES[host]]


@pytest.fixture(scope="module")
async def guarded(servers: ServerEndpoints, vendors: Vendors) -> AsyncIterator[httpx.AsyncClient]:
    """crm-sync with the SSRF guard on, and without a Salesforce URL override."""
    settings = crm_settings(servers, vendors, allow_private_urls=False, salesforce_url=None)
    async with running_app(create_app(settings, resolver=resolver)) as app:
        yield app


REFUSED = [
    "https://127.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.1.2.3/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://inside.example.com/hook",
    "http://hooks.example.com/hook",
    "https://user:pass@hooks.example.com/hook",
    "https://unknown.example.com/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_webhook_url_into_our_network_is_refused_when_set(
    guarded: httpx.AsyncClient, url: str
) -> None:
    t = tenant()
    reply = await put_connector(guarded, "webhook", t, credentials={"url": url})
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["body", "credentials", "url"]
    assert url not in reply.text
    assert (await guarded.get("/v1/connectors", headers=client(t))).json() == []


async def test_salesforce_instance_resolving_to_metadata_is_refused(
    guarded: httpx.AsyncClient,
) -> None:
    credentials = {"instance_url": "https://acme.my.salesforce.com", "token": "x" * 20}
    reply = await put_connector(guarded, "salesforce", tenant(), credentials=credentials)
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "credentials", "instance_url"]


async def test_webhook_name_rebound_to_loopback_is_refused_at_send_time(
    guarded: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    t = tenant()
    await publish(servers, tenant_changed(t))
    reply = await put_connector(
        guarded, "webhook", t, credentials={"url": "https://rebind.example.com/h"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["destination"] == "rebind.example.com"
    NAMES["rebind.example.com"] = ["127.0.0.1"]  # the DNS answer changes after the check
    await publish(servers, note_created(t))

    async def held() -> bool:
        log = await transfers(guarded, t)
        return bool(log and log[0]["log"])

    from .helpers import eventually

    await eventually(held, what="the refused attempt")
    [transfer] = await transfers(guarded, t)
    assert transfer["status"] == "pending"  # nothing left; it waits for a safe URL
    [entry] = transfer["log"]
    assert (entry["outcome"], entry["status_code"]) == ("held", None)
    assert entry["detail"].startswith("destination refused")
    [connector] = (await guarded.get("/v1/connectors", headers=client(t))).json()
    assert (connector["status"], connector["attention"]) == (
        "needs_attention",
        "destination_refused",
    )

"""Fixtures of the crm-sync integration tests: fake CRMs, a running app, the captured logs."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.credentials import new_key
from switchboard_crm_sync.main import create_app
from switchboard_platform.logs import JsonLinesHandler
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings

from .helpers import SECRETS
from .vendors import FakeHubSpot, FakePipedrive, FakeSalesforce, serve

LOGS = io.StringIO()
"""Every JSON log line of the session's crm-sync runs (grepped for credentials)."""


@pytest.fixture(scope="session", autouse=True)
def captured_logs() -> Iterator[io.StringIO]:
    """Capture the JSON logs of the whole run; at the end, no credential may be in them."""
    handler = JsonLinesHandler("crm-sync", stream=LOGS)
    root = logging.getLogger()
    packages = [logging.getLogger(n) for n in ("switchboard_crm_sync", "switchboard_platform")]
    levels = [p.level for p in packages]
    root.addHandler(handler)
    for package in packages:
        package.setLevel(logging.INFO)
    yield LOGS
    root.removeHandler(handler)
    for package, level in zip(packages, levels, strict=True):
        package.setLevel(level)
    text = LOGS.getvalue()
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{len(leaked)} credentials appeared in the logs"


@dataclass
class Vendors:
    """The fake CRMs of the session and their base URLs."""

    hubspot: FakeHubSpot
    salesforce: FakeSalesforce
    pipedrive: FakePipedrive
    urls: dict[str, str]


@pytest.fixture(scope="session")
def vendors() -> Iterator[Vendors]:
    """HubSpot, Salesforce and Pipedrive fakes, each a real HTTP server."""
    hubspot, salesforce, pipedrive = FakeHubSpot(), FakeSalesforce(), FakePipedrive()
    with (
        serve(hubspot.app()) as hubspot_url,
        serve(salesforce.app()) as salesforce_url,
        serve(pipedrive.app()) as pipedrive_url,
    ):
        yield Vendors(
            hubspot,
            salesforce,
            pipedrive,
            {"hubspot": hubspot_url, "salesforce": salesforce_url, "pipedrive": pipedrive_url},
        )


def crm_settings(servers: ServerEndpoints, vendors: Vendors, **overrides: Any) -> CrmSyncSettings:
    """Settings on the session's servers, the fakes' URLs, fast retries, a fresh database."""
    values: dict[str, Any] = {
        "kafka_consumer_group_prefix": f"crm-{uuid.uuid4().hex[:8]}",
        "credentials_key": new_key(),
        "allow_private_urls": True,
        "hubspot_url": vendors.urls["hubspot"],
        "salesforce_url": vendors.urls["salesforce"],
        "pipedrive_url": vendors.urls["pipedrive"],
        "poll_interval_s": 0.05,
        "retry_base_s": 0.2,
        "retry_max_s": 1.0,
        "breaker_threshold": 3,
        "breaker_open_s": 1.0,
        "http_timeout_s": 2.0,
        "transfer_lease_s": 5.0,
        "unknown_tenant_grace_s": 10.0,
        **overrides,
    }
    return service_settings(CrmSyncSettings, servers, f"crmsync_{uuid.uuid4().hex[:10]}", **values)


@pytest.fixture(scope="session")
def settings(servers: ServerEndpoints, vendors: Vendors) -> CrmSyncSettings:
    """The settings of the session's crm-sync app."""
    return crm_settings(servers, vendors)


@pytest.fixture(scope="package")
async def crm(settings: CrmSyncSettings) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of a running crm-sync app (consumers, relay and transfer loop running).

    Stopped once these tests are done: it answers every `retention.due` on the shared
    topics, which other modules' retention tests must not hear from (issue 11).
    """
    async with running_app(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def db(settings: CrmSyncSettings) -> AsyncIterator[Any]:
    """The app's own database, to look at what it stored."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    yield client[settings.mongodb_database]
    await client.close()

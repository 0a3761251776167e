"""Helpers of the retention tests: settings of an app of its own, polling, headers, and
announcing a tenant as intake does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from switchboard_contracts import encode, make_event
from switchboard_contracts.tenants import ContractStatus, Industry, TenantChanged
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header
from switchboard_retention.config import RetentionSettings

T = TypeVar("T")
OPERATOR = auth_header("operator", sub="op-1")


def retention_settings(servers: ServerEndpoints, **overrides: Any) -> RetentionSettings:
    """A retention app of its own: database, consumer groups; sweeps only on demand."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_consumer_group_prefix": f"retention-{suffix}",
        "sweep_interval_s": 0,
        "check_interval_s": 0.2,
        **overrides,
    }
    return service_settings(RetentionSettings, servers, f"retention_{suffix}", **values)


async def until(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0, every_s: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(every_s)


def tenant_changed(tenant_id: str, status: ContractStatus = ContractStatus.ACTIVE) -> TenantChanged:
    """A tenant's profile as intake publishes it on `tenant.changed`."""
    return TenantChanged(
        tenant_id=tenant_id,
        change="created",
        name="Hausverwaltung Lindner",
        industry=Industry.OTHER,
        secrecy_bound=False,
        contract_status=status,
    )


async def announce(servers: ServerEndpoints, db: Any, tenant_id: str) -> None:
    """Publish the tenant's `tenant.changed`; return once the retention app whose database
    is `db` has stored it."""
    event = make_event(tenant_changed(tenant_id), tenant_id=tenant_id, source="/switchboard/intake")
    await produce(servers.kafka_bootstrap_servers, [encode(event)])
    await until(lambda: db.tenants.find_one({"_id": tenant_id}))

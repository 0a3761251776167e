"""Kafka subscribers of the retention service: each hands the typed event to a use case."""

from __future__ import annotations

from collections.abc import Callable

from switchboard_contracts import Event
from switchboard_contracts.dsr import DsrFragment
from switchboard_contracts.retention import RetentionCompleted
from switchboard_contracts.tenants import TenantChanged
from switchboard_platform.runtime import ServiceRuntime

from .service import RetentionService
from .subject_requests import DsrService


def register_handlers(
    runtime: ServiceRuntime,
    retention: Callable[[], RetentionService],
    requests: Callable[[], DsrService],
) -> None:
    """Subscribe to the services' answers and to tenants' contract changes."""

    async def on_retention_completed(event: Event[RetentionCompleted]) -> None:
        if not await retention().record_receipt(event):
            await requests().record_erasure(event.data)

    async def on_dsr_fragment(event: Event[DsrFragment]) -> None:
        await requests().record_fragment(event)

    async def on_tenant_changed(event: Event[TenantChanged]) -> None:
        await retention().tenant_changed(event)

    runtime.consume(RetentionCompleted, on_retention_completed)
    runtime.consume(DsrFragment, on_dsr_fragment)
    runtime.consume(TenantChanged, on_tenant_changed)

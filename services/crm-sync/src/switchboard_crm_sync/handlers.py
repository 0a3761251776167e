"""Kafka subscribers of crm-sync: each hands the typed event to a use case, never to a CRM."""

from __future__ import annotations

from collections.abc import Callable

from switchboard_contracts import Event
from switchboard_contracts.notes import NoteCreated, NoteDeleted
from switchboard_contracts.tenants import TenantChanged
from switchboard_platform.runtime import ServiceRuntime

from .service import CrmSyncService


def register_handlers(runtime: ServiceRuntime, service: Callable[[], CrmSyncService]) -> None:
    """Subscribe crm-sync to the topics it consumes."""

    async def on_tenant_changed(event: Event[TenantChanged]) -> None:
        await service().tenant_changed(event)

    async def on_note_created(event: Event[NoteCreated]) -> None:
        await service().note_created(event)

    async def on_note_deleted(event: Event[NoteDeleted]) -> None:
        await service().note_deleted(event)

    runtime.consume(TenantChanged, on_tenant_changed)
    runtime.consume(NoteCreated, on_note_created)
    runtime.consume(NoteDeleted, on_note_deleted)

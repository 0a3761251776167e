"""Kafka subscribers of the notify service: each hands the typed event to a use case."""

from __future__ import annotations

from collections.abc import Callable

from switchboard_contracts import Event
from switchboard_contracts.consent import ConsentChanged
from switchboard_contracts.notes import NoteCreated, NoteDeleted
from switchboard_contracts.tenants import TenantChanged
from switchboard_platform.runtime import ServiceRuntime

from .service import NotifyService


def register_handlers(runtime: ServiceRuntime, service: Callable[[], NotifyService]) -> None:
    """Subscribe notify to the topics it learns from; none of them sends anything itself."""

    async def on_tenant_changed(event: Event[TenantChanged]) -> None:
        await service().learn_tenant(event)

    async def on_note_created(event: Event[NoteCreated]) -> None:
        await service().record_note(event)

    async def on_note_deleted(event: Event[NoteDeleted]) -> None:
        await service().forget_note(event)

    async def on_consent_changed(event: Event[ConsentChanged]) -> None:
        await service().store_consent(event)

    runtime.consume(TenantChanged, on_tenant_changed)
    runtime.consume(NoteCreated, on_note_created)
    runtime.consume(NoteDeleted, on_note_deleted)
    runtime.consume(ConsentChanged, on_consent_changed)

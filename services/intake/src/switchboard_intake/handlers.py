"""Kafka subscribers of intake: each hands the typed event to a use case."""

from __future__ import annotations

from collections.abc import Callable

from switchboard_contracts import Event
from switchboard_contracts.notes import NoteDeleted
from switchboard_platform.runtime import ServiceRuntime

from .service import IntakeService


def register_handlers(runtime: ServiceRuntime, service: Callable[[], IntakeService]) -> None:
    """Subscribe intake to the topics it consumes (besides retention's, via its participant)."""

    async def on_note_deleted(event: Event[NoteDeleted]) -> None:
        await service().forget_call(event.data)

    runtime.consume(NoteDeleted, on_note_deleted)

"""Kafka subscribers of the notes service: each hands the typed event to a use case."""

from __future__ import annotations

from collections.abc import Callable

from switchboard_contracts import Event
from switchboard_contracts.calls import CallReceived
from switchboard_platform.runtime import ServiceRuntime

from .service import NotesService


def register_handlers(runtime: ServiceRuntime, service: Callable[[], NotesService]) -> None:
    """Subscribe the notes service to the topics it consumes."""

    async def on_call_received(event: Event[CallReceived]) -> None:
        await service().record_call(event)

    runtime.consume(CallReceived, on_call_received)

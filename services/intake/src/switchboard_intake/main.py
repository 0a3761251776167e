"""The intake service: tenant onboarding and call capture, publishing their events."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from switchboard_contracts.calls import CallReceived
from switchboard_contracts.consent import ConsentChanged
from switchboard_contracts.tenants import TenantChanged
from switchboard_platform.outbox import OutboxStore
from switchboard_platform.retention_participant import RetentionParticipant
from switchboard_platform.runtime import ServiceRuntime
from switchboard_platform.subjects import never_withdrawn

from . import api
from .backpressure import DownstreamLag
from .config import IntakeSettings
from .handlers import register_handlers
from .inventory import INVENTORY
from .repository import CALLS, INDEXES, TENANTS, IntakeRepository
from .service import IntakeService


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    """Build the intake app; clients connect when it starts."""
    settings = settings or IntakeSettings()
    participant = RetentionParticipant(INVENTORY)
    runtime = ServiceRuntime(
        "intake",
        settings,
        **participant.options(
            indexes=INDEXES,
            outbox_collections=(TENANTS, CALLS),
            publishes=(TenantChanged, CallReceived, ConsentChanged),
        ),
    )
    if settings.retention_participant:
        participant.attach(runtime)  # retention.due, dsr.requested (R-RET-*, R-DSR-*)
        register_handlers(runtime, lambda: app.state.intake_service)  # note.deleted
    app: FastAPI

    async def unpublished_calls(cap: int) -> int:
        return await OutboxStore(runtime.db, (CALLS,)).pending_documents(cap)

    backpressure = DownstreamLag(
        settings,
        groups=[g.strip() for g in settings.backpressure_groups.split(",") if g.strip()],
        limit=settings.max_downstream_lag,
        unpublished=unpublished_calls,
    )

    async def on_startup(rt: ServiceRuntime) -> None:
        app.state.backpressure = backpressure
        backpressure.start()
        app.state.intake_service = IntakeService(
            IntakeRepository(rt.db),
            events_written=rt.notify_outbox,
            recording_notice_version=settings.recording_notice_version,
            idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_s),
            tenant_cache_s=settings.tenant_cache_s,
            recording_withdrawn=(
                participant.recording_withdrawn
                if settings.retention_participant
                else never_withdrawn
            ),
        )

    app = runtime.create_app(
        title="Switchboard intake",
        description="Tenant onboarding (R-ONB-1) and call capture (R-CALL-1, R-CALL-2, R-REC-1).",
        routers=[api.tenants, api.calls],
        on_startup=on_startup,
        on_shutdown=lambda _: backpressure.stop(),
    )
    app.state.retention_participant = participant
    return app

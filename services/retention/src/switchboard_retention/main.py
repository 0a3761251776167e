"""The retention service: policies, sweeps, legal holds, data-subject requests, receipts."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_contracts.dsr import DsrRequested
from switchboard_contracts.retention import RetentionDue
from switchboard_platform.runtime import ServiceRuntime

from . import api, api_dsr, dsr_store, holds, receipts, sweeps, tenants
from .config import RetentionSettings
from .dsr_store import REQUESTS, DsrStore
from .handlers import register_handlers
from .holds import HoldStore
from .receipts import ReceiptStore
from .scheduler import Scheduler
from .service import RetentionService
from .subject_requests import DsrService
from .sweeps import SWEEPS, SweepStore
from .tenants import TenantStore

INDEXES = {
    **sweeps.INDEXES,
    **holds.INDEXES,
    **receipts.INDEXES,
    **tenants.INDEXES,
    **dsr_store.INDEXES,
}


def create_app(settings: RetentionSettings | None = None) -> FastAPI:
    """Build the retention app; clients connect, and the scheduler starts, when it starts."""
    settings = settings or RetentionSettings()
    runtime = ServiceRuntime(
        "retention",
        settings,
        indexes=INDEXES,
        outbox_collections=(SWEEPS, REQUESTS),
        publishes=(RetentionDue, DsrRequested),
    )
    app: FastAPI

    def retention() -> RetentionService:
        service: RetentionService = app.state.retention_service
        return service

    def requests() -> DsrService:
        service: DsrService = app.state.dsr_service
        return service

    async def on_startup(rt: ServiceRuntime) -> None:
        holds_store, requests_store = HoldStore(rt.db), DsrStore(rt.db)
        tenants_store = TenantStore(rt.db)
        retention_service = RetentionService(
            sweeps=SweepStore(rt.db),
            holds=holds_store,
            receipts=ReceiptStore(rt.db),
            tenants=tenants_store,
            requests=requests_store,
            participants=settings.participant_names,
            answer_timeout_s=settings.answer_timeout_s,
            production=settings.is_production,
            events_written=rt.outbox_notifier(SWEEPS),
        )
        dsr_service = DsrService(
            requests=requests_store,
            holds=holds_store,
            tenants=tenants_store,
            participants=settings.participant_names,
            answer_timeout_s=settings.answer_timeout_s,
            near_due_days=settings.dsr_near_due_days,
            events_written=rt.outbox_notifier(REQUESTS),
        )
        scheduler = Scheduler(
            retention_service,
            dsr_service,
            sweep_interval_s=settings.sweep_interval_s,
            check_interval_s=settings.check_interval_s,
            verify_interval_s=settings.verify_interval_s,
        )
        app.state.retention_service = retention_service
        app.state.dsr_service = dsr_service
        app.state.scheduler = scheduler

        async def scheduler_alive() -> bool:
            return scheduler.running

        rt.health.add_probe("scheduler", scheduler_alive)
        scheduler.start()

    async def on_shutdown(_: ServiceRuntime) -> None:
        await app.state.scheduler.stop()

    register_handlers(runtime, retention, requests)
    app = runtime.create_app(
        title="Switchboard retention",
        description="Retention policies and sweeps, legal holds, data-subject requests and "
        "erasure receipts (R-RET-1..6, R-DSR-15..21, R-DSR-T). Operators only.",
        routers=[api.router, api_dsr.router],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
    return app

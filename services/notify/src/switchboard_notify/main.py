"""The notify service: call notes reach the client by e-mail and SMS, on consent (R-NOTE-1)."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_contracts.consent import ConsentChanged
from switchboard_contracts.delivery import NotificationFailed, NotificationSent
from switchboard_platform.retention_participant import RetentionParticipant
from switchboard_platform.runtime import ServiceRuntime

from . import api
from .config import NotifySettings
from .handlers import register_handlers
from .inventory import INVENTORY
from .ledger import DELIVERIES, Ledger
from .ledger import INDEXES as LEDGER_INDEXES
from .registry import CONSENTS, ConsentRegistry
from .registry import INDEXES as REGISTRY_INDEXES
from .repository import INDEXES as REPOSITORY_INDEXES
from .repository import NotesRepository, TenantsRepository
from .sender import Sender
from .service import NotifyService, Policy
from .sms_gateways import sms_gateway
from .smtp import SmtpMailer


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    """Build the notify app; clients connect, and the sender starts, when it starts."""
    settings = settings or NotifySettings()
    participant = RetentionParticipant(INVENTORY)
    runtime = ServiceRuntime(
        "notify",
        settings,
        **participant.options(
            indexes={**REPOSITORY_INDEXES, **LEDGER_INDEXES, **REGISTRY_INDEXES},
            outbox_collections=(DELIVERIES, CONSENTS),
            publishes=(ConsentChanged, NotificationSent, NotificationFailed),
        ),
    )
    participant.attach(runtime)  # retention.due, dsr.requested (R-RET-*, R-DSR-*)
    app: FastAPI

    def service() -> NotifyService:
        notify_service: NotifyService = app.state.notify_service
        return notify_service

    async def on_startup(rt: ServiceRuntime) -> None:
        tenants = TenantsRepository(rt.db, max_age_s=settings.tenant_cache_s)
        notes = NotesRepository(rt.db)
        ledger, registry = Ledger(rt.db), ConsentRegistry(rt.db)
        sender = Sender(
            ledger=ledger,
            notes=notes,
            tenants=tenants,
            registry=registry,
            mailer=SmtpMailer(settings),
            sms=sms_gateway(settings),
            settings=settings,
            health=rt.health,
            events_written=lambda: rt.notify_outbox(DELIVERIES),
            restricted=participant.is_restricted,
        )
        app.state.sender = sender
        app.state.notify_service = NotifyService(
            tenants,
            notes,
            ledger,
            registry,
            policy=Policy(
                notice_version=settings.onboarding_notice_version,
                attempt_limit=settings.max_attempts,
                id_domain=settings.id_domain,
            ),
            events_written=lambda: rt.notify_outbox(CONSENTS),
            deliveries_due=sender.wake,
            restricted=participant.is_restricted,
        )
        app.state.delivery_cursors = rt.cursors("deliveries")
        # Sending needs the database only: it starts before the consumers join their
        # groups, so a restarted replica resumes unfinished deliveries at once.
        await sender.start()

        async def sender_alive() -> bool:
            return sender.running

        rt.health.add_probe("sender", sender_alive)

    async def on_shutdown(_: ServiceRuntime) -> None:
        await app.state.sender.stop()  # before consumers, relay and database stop

    register_handlers(runtime, service)
    app = runtime.create_app(
        title="Switchboard notify",
        description="Call notes by e-mail and SMS on consent; consent registry; delivery "
        "ledger (R-NOTE-1, R-CON-1..3, R-API-2, R-SEC-3).",
        routers=[api.router],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
    app.state.retention_participant = participant
    return app

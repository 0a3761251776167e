"""crm-sync: call notes into each client's CRM (HubSpot, Salesforce, Pipedrive, webhooks).

`note.created` and `note.deleted` become transfers; a background transfer loop runs them
against each tenant's connectors; every outcome is a transfer-log entry and a
`crm.synced` / `crm.failed` event (R-API-1, R-API-2, R-NOTE-2, R-SEC-3, R-SEC-5).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from fastapi import FastAPI
from pymongo import IndexModel

from switchboard_contracts.delivery import CrmFailed, CrmSynced
from switchboard_platform.retention_participant import RetentionParticipant
from switchboard_platform.runtime import ServiceRuntime

from . import (
    api,
    connector_store,
    deleted_note_store,
    record_store,
    tenant_store,
    transfer_store,
)
from .config import CrmSyncSettings
from .connector_store import ConnectorStore
from .connectors import ConnectorFactory
from .credentials import Keyring
from .deleted_note_store import DeletedNoteStore
from .delivery import Delivery
from .handlers import register_handlers
from .inventory import INVENTORY
from .loop import TransferLoop
from .record_store import RecordStore
from .service import CrmSyncService
from .ssrf import Resolver, UrlGuard, system_resolver
from .tenant_store import TenantStore
from .transfer_store import TRANSFERS, TransferStore

log = logging.getLogger(__name__)
SERVICE = "crm-sync"


def _indexes() -> Mapping[str, Sequence[IndexModel]]:
    merged: dict[str, Sequence[IndexModel]] = {}
    for module in (connector_store, transfer_store, record_store, tenant_store, deleted_note_store):
        merged.update(module.INDEXES)
    return merged


def keyring_of(settings: CrmSyncSettings) -> Keyring:
    """The credentials keyring; dev and tests without a key get one that lives in memory."""
    if settings.credentials_key is not None:
        return Keyring.from_setting(settings.credentials_key.get_secret_value())
    log.warning(
        "CRM_SYNC_CREDENTIALS_KEY is not set: credentials are sealed with a key that dies "
        "with this process (dev and tests only)"
    )
    return Keyring([os.urandom(32)])


async def reseal(service: CrmSyncService) -> None:
    """After a key rotation, seal every connector's credentials with the newest key."""
    try:
        resealed, unreadable = await service.reseal_credentials()
    except Exception:
        log.exception("credentials were not re-sealed; they are when next used")
        return
    if resealed or unreadable:
        log.info(
            "connector credentials re-sealed with the current key",
            extra={"resealed": resealed, "unreadable": unreadable},
        )


def create_app(
    settings: CrmSyncSettings | None = None, *, resolver: Resolver | None = None
) -> FastAPI:
    """Build the crm-sync app; clients connect and the transfer loop starts with it.

    `resolver` replaces the system DNS resolver for the SSRF guard (tests).
    """
    settings = settings or CrmSyncSettings()
    keyring = keyring_of(settings)
    participant = RetentionParticipant(INVENTORY)
    runtime = ServiceRuntime(
        SERVICE,
        settings,
        **participant.options(
            indexes=_indexes(),
            outbox_collections=(TRANSFERS,),
            publishes=(CrmSynced, CrmFailed),
        ),
    )
    participant.attach(runtime)  # retention.due, dsr.requested (R-RET-*, R-DSR-*)
    app: FastAPI
    held: dict[str, Any] = {}

    def service() -> CrmSyncService:
        crm_service: CrmSyncService = app.state.crm_service
        return crm_service

    async def on_startup(rt: ServiceRuntime) -> None:
        client = httpx.AsyncClient(
            trust_env=False,  # no proxy from the environment: requests go where the guard says
            follow_redirects=False,  # a redirect could lead past the SSRF guard
            timeout=settings.http_timeout_s,
            limits=httpx.Limits(max_connections=settings.max_in_flight * 2),
        )
        guard = UrlGuard(
            allow_private=settings.allow_private_urls, resolver=resolver or system_resolver
        )
        factory = ConnectorFactory(settings, client, guard)
        connectors, transfers = ConnectorStore(rt.db), TransferStore(rt.db)
        tenants = TenantStore(rt.db)
        delivery = Delivery(
            settings=settings,
            transfers=transfers,
            connectors=connectors,
            records=RecordStore(rt.db),
            tenants=tenants,
            keyring=keyring,
            factory=factory,
            events_written=rt.outbox_notifier(TRANSFERS),
            restricted=participant.is_restricted,
        )
        loop = TransferLoop(
            settings=settings, transfers=transfers, connectors=connectors, delivery=delivery
        )
        app.state.crm_service = CrmSyncService(
            connectors=connectors,
            transfers=transfers,
            tenants=tenants,
            deleted_notes=DeletedNoteStore(rt.db),
            keyring=keyring,
            guard=guard,
            factory=factory,
            salesforce_override=bool(settings.salesforce_url),
            wake=loop.wake,
            events_written=rt.outbox_notifier(TRANSFERS),
        )
        app.state.transfer_cursors = rt.cursors("transfers")
        app.state.transfer_loop = loop

        async def loop_ok() -> bool:
            return loop.healthy

        rt.health.add_probe("transfer_loop", loop_ok)
        held.update(client=client, loop=loop)
        loop.start()  # before the consumers join: transfers left by a crash go on at once
        held["reseal"] = asyncio.create_task(reseal(app.state.crm_service))

    async def on_shutdown(rt: ServiceRuntime) -> None:
        """The transfer loop and its client stop before the consumers and the database."""
        task: asyncio.Task[None] | None = held.pop("reseal", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        loop: TransferLoop | None = held.pop("loop", None)
        if loop is not None:
            await loop.stop()
            await held.pop("client").aclose()

    register_handlers(runtime, service)
    app = runtime.create_app(
        title="Switchboard crm-sync",
        description="Call notes into each client's CRM; the transfer log "
        "(R-API-1, R-API-2, R-NOTE-2, R-SEC-3, R-SEC-5).",
        routers=[api.router],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
    app.state.retention_participant = participant
    return app

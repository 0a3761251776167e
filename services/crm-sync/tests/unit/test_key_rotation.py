"""After a key rotation, every connector's credentials are sealed again with the newest key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import httpx

from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.connector_store import ConnectorStore
from switchboard_crm_sync.connectors import ConnectorFactory
from switchboard_crm_sync.credentials import Keyring, new_key
from switchboard_crm_sync.deleted_note_store import DeletedNoteStore
from switchboard_crm_sync.domain import Kind
from switchboard_crm_sync.service import CrmSyncService
from switchboard_crm_sync.ssrf import UrlGuard
from switchboard_crm_sync.tenant_store import TenantStore
from switchboard_crm_sync.transfer_store import TransferStore
from switchboard_platform.testing.fakes import FakeDatabase


async def test_rotation_reseals_every_connector_with_the_newest_key() -> None:
    db = cast(Any, FakeDatabase())
    store = ConnectorStore(db)
    old, new = new_key(), new_key()
    before = Keyring.from_setting(old)
    now = datetime.now(UTC)
    for tenant in ("t1", "t2"):
        sealed = before.seal({"token": f"secret-{tenant}"}, bound_to=f"{tenant}:hubspot")
        assert await store.create(tenant, Kind.HUBSPOT, {"credentials": sealed}, now)
    settings = CrmSyncSettings(environment="test")
    rotated = Keyring.from_setting(f"{new},{old}")
    async with httpx.AsyncClient() as client:
        service = CrmSyncService(
            connectors=store,
            transfers=TransferStore(db),
            tenants=TenantStore(db),
            deleted_notes=DeletedNoteStore(db),
            keyring=rotated,
            guard=UrlGuard(allow_private=False),
            factory=ConnectorFactory(settings, client, UrlGuard(allow_private=False)),
            salesforce_override=False,
        )
        assert await service.reseal_credentials() == (2, 0)
        assert await service.reseal_credentials() == (0, 0)
    only_new = Keyring.from_setting(new)
    for doc in await store.sealed():
        assert only_new.open(doc["credentials"], bound_to=doc["_id"]) == {
            "token": f"secret-{doc['_id'].split(':')[0]}"
        }

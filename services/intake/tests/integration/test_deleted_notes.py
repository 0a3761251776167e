"""A call whose note the client deleted keeps nothing of its caller in intake (R-NOTE-2).

notes publishes `note.deleted`; intake, as every other holder of a copy, drops what its call
record holds of the caller and the call, and keeps ids, retry key and retention clock: an
agent's retry of the capture must not record the call (and so its note) again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from switchboard_contracts import encode, make_event
from switchboard_contracts.notes import DeletionReason, NoteDeleted
from switchboard_intake.config import IntakeSettings
from switchboard_intake.repository import IntakeRepository
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.polling import eventually
from switchboard_platform.testing.pytest_plugin import ServerEndpoints


@pytest.fixture
def intake_settings(intake_settings: IntakeSettings) -> IntakeSettings:
    """This module's app consumes `note.deleted` (the per-test apps elsewhere do not)."""
    return intake_settings.model_copy(update={"retention_participant": True})


async def _forgotten(db: Any, call_id: str) -> dict[str, Any]:
    async def without_caller() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await db.calls.find_one({"_id": call_id})
        return doc if doc is not None and "caller" not in doc else None

    return await eventually(without_caller, timeout_s=30)


async def test_r_note_2_a_deleted_notes_call_keeps_no_caller_and_is_not_recorded_again(
    intake: httpx.AsyncClient,
    agent: dict[str, str],
    create_tenant: Any,
    call_body: Any,
    db: Any,
    servers: ServerEndpoints,
) -> None:
    tenant = await create_tenant()
    body = call_body(tenant_id=tenant)
    retry = {**agent, "Idempotency-Key": f"capture-{uuid.uuid4().hex[:8]}"}
    first = await intake.post("/v1/calls", json=body, headers=retry)
    assert first.status_code == 201, first.text
    call_id = first.json()["id"]

    deletion = NoteDeleted(
        note_id=str(uuid.uuid4()),
        call_id=call_id,
        tenant_id=tenant,
        deleted_at=datetime.now(UTC),
        deleted_by="client-user",
        reason=DeletionReason.CLIENT_REQUEST,
    )
    event = make_event(deletion, tenant_id=tenant, source="/switchboard/notes")
    await produce(servers.kafka_bootstrap_servers, [encode(event), encode(event)])
    doc = await _forgotten(db, call_id)

    for held in ("Erika", "0170", "Mietvertrag", "Dr. Weber", "ACME"):
        assert held not in repr(doc), held
    assert (doc["tenant_id"], doc["category"]) == (tenant, "call_data")
    assert doc["retention_from"] is not None
    assert doc["forgotten_at"] is not None
    again = await intake.post("/v1/calls", json=body, headers=retry)
    assert again.status_code == 409, again.text
    assert "deleted" in again.json()["detail"]
    assert await db.calls.count_documents({"tenant_id": tenant}) == 1


async def test_another_tenants_deletion_forgets_nothing(
    intake: httpx.AsyncClient,
    agent: dict[str, str],
    create_tenant: Any,
    call_body: Any,
    db: Any,
) -> None:
    tenant = await create_tenant()
    reply = await intake.post("/v1/calls", json=call_body(tenant_id=tenant), headers=agent)
    call_id = reply.json()["id"]
    repository = IntakeRepository(db)
    assert not await repository.forget_call("another-tenant", call_id, datetime.now(UTC))
    assert (await db.calls.find_one({"_id": call_id}))["caller"]["name"] == "Erika Mustermann"

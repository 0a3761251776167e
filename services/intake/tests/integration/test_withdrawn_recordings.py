"""A recording consent withdrawn before the call is captured (R-REC-1).

notify publishes the withdrawal on `consent.changed`; intake keeps it. A call of that caller
started before it and captured after it is stored, and announced on `call.received`,
without the recording's reference; a later call, recorded with consent given again, keeps it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from switchboard_contracts import encode
from switchboard_intake.config import IntakeSettings
from switchboard_platform.testing.consents import recording_consent
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.polling import eventually
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.topics import collect_events

PHONE = "+491701234567"  # the conftest body's "0170 1234567"


@pytest.fixture
def intake_settings(intake_settings: IntakeSettings) -> IntakeSettings:
    """This module's app consumes `consent.changed` (the per-test apps elsewhere do not)."""
    return intake_settings.model_copy(update={"retention_participant": True})


async def test_r_rec_1_a_call_captured_after_its_callers_withdrawal_keeps_no_recording(
    intake: httpx.AsyncClient,
    agent: dict[str, str],
    create_tenant: Any,
    call_body: Any,
    db: Any,
    servers: ServerEndpoints,
) -> None:
    tenant = await create_tenant()
    now = datetime.now(UTC).replace(microsecond=0)
    event = recording_consent(tenant, PHONE, occurred_at=now - timedelta(minutes=2))
    await produce(servers.kafka_bootstrap_servers, [encode(event)])
    await eventually(
        lambda: db.consent_withdrawals.count_documents({"tenant_id": tenant}), timeout_s=30
    )

    def recorded(minutes_ago: int) -> dict[str, Any]:
        started = (now - timedelta(minutes=minutes_ago)).isoformat()
        url = f"https://rec.example/{uuid.uuid4().hex}.ogg"
        body: dict[str, Any] = call_body(
            tenant_id=tenant, started_at=started, recording={"consent": True, "url": url}
        )
        return body

    before, after = recorded(5), recorded(1)
    replies = [await intake.post("/v1/calls", json=b, headers=agent) for b in (before, after)]
    assert [r.status_code for r in replies] == [201, 201], [r.text for r in replies]
    first, second = (r.json() for r in replies)
    stored = {d["_id"]: d["recording"] async for d in db.calls.find({"tenant_id": tenant})}
    assert stored[first["id"]].get("url") is None
    assert stored[second["id"]]["url"] == after["recording"]["url"]
    announced = await collect_events(
        servers.kafka_bootstrap_servers, "call.received", tenant=tenant, expect=2
    )
    urls = {e.data.call_id: e.data.recording.url for e in announced}  # type: ignore[attr-defined]
    assert urls == {first["id"]: None, second["id"]: after["recording"]["url"]}

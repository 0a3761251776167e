"""SIGKILL during 500 transfers: no CRM record twice, none missing (issue 10, §5).

crm-sync runs as a real process on the session's broker and database; the test feeds 500
`note.created` straight to Kafka, kills the process with SIGKILL while transfers are in
flight, and starts it again. The fake HubSpot creates a call on every POST (as HubSpot
does) and answers late, so a kill often lands after HubSpot created a call but before
crm-sync heard of it: only the mapping and the reconciliation by `hs_call_external_id`
keep that call single. The webhook receiver keeps one record per `webhook-id`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from pymongo import MongoClient

from switchboard_crm_sync.credentials import new_key
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

from .helpers import SECRETS, client, note_created, publish, tenant, tenant_changed, token
from .vendors import FakeHubSpot, WebhookReceiver, serve

pytestmark = pytest.mark.slow

TOTAL = 500
CALLERS = 40


def slow_answers(fake: FakeHubSpot) -> Any:
    """HubSpot answering each created call 30 ms late: the call exists before the answer."""
    app = fake.app()

    @app.middleware("http")
    async def late(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if request.method == "POST" and request.url.path == "/crm/v3/objects/calls":
            await asyncio.sleep(0.03)
        return response

    return app


def test_r_api_1_sigkill_during_500_transfers_creates_no_crm_record_twice_and_misses_none(
    servers: ServerEndpoints, tmp_path: Path
) -> None:
    hubspot, receiver = FakeHubSpot(), WebhookReceiver()
    secret = token("hubspot")
    hubspot.tokens.add(secret)
    database = f"crmsync_crash_{uuid.uuid4().hex[:8]}"
    with serve(slow_answers(hubspot)) as hubspot_url, serve(receiver.app()) as hook_url:
        process = ServiceProcess(
            "crm-sync",
            "switchboard_crm_sync",
            kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
            mongodb_url=servers.mongodb_url,
            log_dir=tmp_path,
            database=database,
            extra_env={
                "CRM_SYNC_ALLOW_PRIVATE_URLS": "true",
                "CRM_SYNC_CREDENTIALS_KEY": new_key(),
                "CRM_SYNC_HUBSPOT_URL": hubspot_url,
                "CRM_SYNC_POLL_INTERVAL_S": "0.05",
                "CRM_SYNC_HTTP_TIMEOUT_S": "1.5",
                "CRM_SYNC_TRANSFER_LEASE_S": "3",
                "CRM_SYNC_RETRY_BASE_S": "0.2",
                "KAFKA_CONSUMER_GROUP_PREFIX": f"crm-crash-{uuid.uuid4().hex[:8]}",
            },
        )
        started = time.monotonic()
        process.start()
        try:
            hooks, crm = tenant(), tenant()
            put = httpx.put(
                f"{process.url}/v1/connectors/webhook",
                json={"credentials": {"url": f"{hook_url}/in"}, "region": "EU"},
                headers=client(hooks),
                timeout=10,
            )
            receiver.secret = put.json()["secret"]
            SECRETS.append(receiver.secret)
            put = httpx.put(
                f"{process.url}/v1/connectors/hubspot",
                json={"credentials": {"token": secret}, "region": "EU"},
                headers=client(crm),
                timeout=10,
            )
            assert put.status_code == 200, put.text
            phones = [f"+4915112{n:06d}" for n in range(CALLERS)]
            notes = [
                note_created(t, phone=phones[i % CALLERS], email=None)
                for i in range(TOTAL // 2)
                for t in (hooks, crm)
            ]
            asyncio.run(publish(servers, tenant_changed(hooks), tenant_changed(crm), *notes))

            def arrived() -> int:
                return len(receiver.records) + len(hubspot.objects["calls"])

            deadline = time.monotonic() + 30
            while arrived() < TOTAL // 4:
                assert time.monotonic() < deadline, process.log_tail()
                time.sleep(0.01)
            killed_at = arrived()
            process.kill()
            time.sleep(0.3)
            process.start()

            deadline = time.monotonic() + 45
            while arrived() < TOTAL:
                assert time.monotonic() < deadline, f"{arrived()} of {TOTAL}: {process.log_tail()}"
                time.sleep(0.1)
            time.sleep(1.0)  # anything still coming would be a duplicate
            elapsed = time.monotonic() - started
        finally:
            process.terminate()

        by_note = Counter(
            c["properties"]["hs_call_external_id"] for c in hubspot.objects["calls"].values()
        )
        crm_notes = {n.data.note_id for n in notes if n.data.tenant_id == crm}
        hook_notes = {n.data.note_id for n in notes if n.data.tenant_id == hooks}
        assert set(by_note) == crm_notes
        assert max(by_note.values()) == 1
        assert {d.payload["data"]["note_id"] for d in receiver.deliveries} == hook_notes
        assert len(receiver.records) == len(hook_notes)
        assert len(hubspot.contacts) == CALLERS  # one contact per caller, none twice

        mongo: MongoClient[dict[str, Any]] = MongoClient(servers.mongodb_url)
        try:
            transfers = list(mongo[database]["transfers"].find({}, {"status": 1, "log": 1}))
        finally:
            mongo.close()
        assert Counter(t["status"] for t in transfers) == {"synced": TOTAL}
        reconciled = sum(any("interrupted" in e["detail"] for e in t["log"]) for t in transfers)
        log_text = (tmp_path / "crm-sync.log").read_text(errors="replace")
        assert not [s for s in SECRETS if s in log_text]
        print(
            f"\ncrash test: {TOTAL} notes, SIGKILL after {killed_at} records, restarted; "
            f"HubSpot calls {len(by_note)} (max per note {max(by_note.values())}), "
            f"webhook records {len(receiver.records)} from {len(receiver.deliveries)} deliveries "
            f"({len(receiver.posts)} POSTs), {reconciled} calls found again after the kill, "
            f"all synced in {elapsed:.1f}s"
        )

"""No mail lost, repeats bounded and recognisable, when notify is SIGKILLed mid-send (issue 9 §6).

(Named to run after the modules whose apps read the shared topics from the start.)

notify runs as a real process on the session's broker and database; 500 `note.created` go
straight onto the topic for a tenant with three e-mail recipients, one of whom withdrew
consent. notify is killed with SIGKILL three times while it sends, and restarted. SMTP has no
idempotency: a kill between the server's 250 and the ledger's mark repeats that mail, with
the same Message-ID (docs/decisions/0011), so repeats are counted, reported and bounded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from switchboard_contracts.tenants import Channel, ContractStatus
from switchboard_notify.domain import delivery_id
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header

from ..support import (
    SmtpServer,
    SmtpSink,
    address,
    new_tenant,
    note_created,
    publish,
    tenant_changed,
)

pytestmark = pytest.mark.slow

NOTES = 500
CONNECTIONS = 4
KILL_AFTER = (150, 450, 750)  # mails received at the sink (of 1000) before each SIGKILL


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # the sink's thread needs the GIL more than this loop does


def test_r_note_1_r_con_2_sigkill_mid_send_loses_no_mail_and_reaches_no_withdrawn_recipient(
    servers: ServerEndpoints, tmp_path: Path
) -> None:
    tenant = new_tenant()
    chef, empfang, withdrawn = (address(tenant, n) for n in ("chef", "empfang", "alt"))
    consented = (chef, empfang)
    sink = SmtpSink()
    run = uuid.uuid4().hex[:8]
    database = f"notify_crash_{run}"
    with SmtpServer(sink) as smtp:
        notify = ServiceProcess(
            "notify",
            "switchboard_notify",
            kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
            mongodb_url=servers.mongodb_url,
            log_dir=tmp_path,
            database=database,
            extra_env={
                "KAFKA_CONSUMER_GROUP_PREFIX": f"notify-crash-{run}",
                "NOTIFY_SMTP_HOST": "127.0.0.1",
                "NOTIFY_SMTP_PORT": str(smtp.port),
                "NOTIFY_SMTP_TLS": "none",
                "NOTIFY_SMTP_CONNECTIONS": str(CONNECTIONS),
                "NOTIFY_SMTP_TIMEOUT_S": "5",
                "NOTIFY_SMS_TIMEOUT_S": "5",
                "NOTIFY_MAIL_FROM": "notiz@switchboard.example",
                "NOTIFY_SENDER_POLL_S": "0.2",
                "NOTIFY_SEND_LEASE_S": "30",
                # the relay wakes on notify's own writes; its poll only finds a dead run's
                # events, and every poll is a query on the (serial) embedded database
                "OUTBOX_POLL_INTERVAL_S": "1.0",
            },
        )
        started = time.monotonic()
        notify.start()
        try:
            asyncio.run(
                publish(
                    servers.kafka_bootstrap_servers,
                    tenant_changed(
                        tenant, [(Channel.EMAIL, a, None) for a in (*consented, withdrawn)]
                    ),
                )
            )
            client = auth_header("client", tenant=tenant)

            def onboarded() -> bool:
                reply = httpx.get(f"{notify.url}/v1/recipients", headers=client, timeout=5)
                return len(reply.json()) == 3

            _wait(onboarded, 30, "the tenant")
            reply = httpx.post(
                f"{notify.url}/v1/consents",
                headers=client,
                json={
                    "subject": withdrawn,
                    "purpose": "notification",
                    "channel": "email",
                    "status": "withdrawn",
                    "method": "written",
                    "text_version": "kuendigung-2025-03",
                },
                timeout=5,
            )
            assert reply.status_code == 201, reply.text
            notes = [note_created(tenant, note_id=f"crash-{run}-{i}") for i in range(NOTES)]
            asyncio.run(publish(servers.kafka_bootstrap_servers, *notes))

            def received() -> int:
                return sum(1 for m in list(sink.messages) if m.rcpt_tos[0] in consented)

            kills = []
            for threshold in KILL_AFTER:
                _wait(lambda t=threshold: received() >= t, 60, f"{threshold} mails")
                notify.kill()
                kills.append(received())
                notify.start()
            expected = NOTES * len(consented)
            _wait(
                lambda: (
                    len({m.message_id for m in list(sink.messages) if m.rcpt_tos[0] in consented})
                    >= expected
                ),
                60,
                "every mail",
            )
            time.sleep(1.0)  # anything still in flight would arrive now
        finally:
            notify.terminate()
            # Later apps of the session read the shared topics from the start: an ended
            # contract spares them sending these 1,000 mails again.
            asyncio.run(
                publish(
                    servers.kafka_bootstrap_servers,
                    tenant_changed(tenant, [], status=ContractStatus.TERMINATED),
                )
            )
    elapsed = time.monotonic() - started

    mine = [m for m in sink.messages if m.rcpt_tos[0] in (*consented, withdrawn)]
    ids = Counter(m.message_id for m in mine)
    wanted = {
        f"<{delivery_id(n.data.note_id, Channel.EMAIL, a)}@switchboard.example>"
        for n in notes
        for a in consented
    }
    repeats = sum(ids.values()) - len(ids)
    figures = (
        f"{NOTES} notes x {len(consented)} consented recipients: {len(ids)} distinct Message-IDs, "
        f"{sum(ids.values())} mails, {repeats} repeats after {len(kills)} SIGKILLs "
        f"(at {kills} mails), {elapsed:.1f}s"
    )
    print(f"\nnotify crash test: {figures}")
    assert set(ids) == wanted, figures  # every note reached every consented recipient
    assert not [m for m in mine if withdrawn in m.rcpt_tos], "mail to a withdrawn recipient"
    # a repeat needs a kill between the server's 250 and the mark: at most one per open
    # connection per kill, and it carries the first mail's Message-ID
    assert repeats <= len(kills) * CONNECTIONS, figures
    assert all(count <= 1 + len(kills) for count in ids.values()), figures
    mongo: MongoClient[dict[str, object]] = MongoClient(servers.mongodb_url)
    try:
        statuses = Counter(
            (d["recipient"], d["status"])
            for d in mongo[database]["deliveries"].find({"tenant_id": tenant})
        )
    finally:
        mongo.close()
    assert statuses == {
        (chef, "sent"): NOTES,
        (empfang, "sent"): NOTES,
        (withdrawn, "suppressed"): NOTES,
    }, figures

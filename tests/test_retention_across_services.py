"""Retention and data-subject requests reach notify and crm-sync (issue 11: every data-holding
service takes part).

Intake, notes, notify, crm-sync and retention run in this process on the session's real
broker and database; notify sends to a real SMTP server (aiosmtpd) and crm-sync to a fake
HubSpot served over HTTP — notify's and crm-sync's own test helpers. Each test has tenants
and callers of its own, and every sweep is limited to its tenant, so no other module's data
is ever in scope. The tests look into the services' databases directly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from switchboard_contracts import Event, encode
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentStatus,
)
from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.credentials import new_key
from switchboard_crm_sync.main import create_app as create_crm_sync
from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app as create_intake
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app as create_notes
from switchboard_notify.config import NotifySettings
from switchboard_notify.main import create_app as create_notify
from switchboard_platform.retention_participant import RetentionParticipant
from switchboard_platform.subjects import subject_ids
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.consents import recording_consent
from switchboard_platform.testing.kafka import produce, start_groups_at_log_end
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import records_of
from switchboard_retention.config import RetentionSettings
from switchboard_retention.main import create_app as create_retention

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
OPERATOR = auth_header("operator", sub="op-7")
AGENT = auth_header("agent", sub="agent-7")
RESTRICTED = "restricted (Art. 18)"


def _helpers(name: str, relative: str) -> ModuleType:
    """A service's own test helpers (test folders are not packages that import across)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


NOTIFY_SUPPORT = _helpers("notify_test_support", "services/notify/tests/support.py")
CRM_VENDORS = _helpers("crm_sync_test_vendors", "services/crm-sync/tests/integration/vendors.py")


@dataclass
class Suite:
    """The five running services, the mail server, the fake CRM and the databases."""

    intake: httpx.AsyncClient
    notes: httpx.AsyncClient
    crm: httpx.AsyncClient
    retention: httpx.AsyncClient
    notes_app: FastAPI
    notify_app: FastAPI
    crm_app: FastAPI
    smtp: Any
    hubspot: Any
    intake_db: Any
    notes_db: Any
    notify_db: Any
    crm_db: Any
    retention_db: Any

    def participants(self) -> list[RetentionParticipant]:
        return [
            self.notes_app.state.retention_participant,
            self.notify_app.state.retention_participant,
            self.crm_app.state.retention_participant,
        ]


async def until(check: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout_s`.

    The module's services join fresh consumer groups, started at the end of the shared
    topics (`start_groups_at_log_end`): they do not first read every event the session's
    earlier tests left there.
    """
    async with asyncio.timeout(timeout_s):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def suite(servers: ServerEndpoints) -> AsyncIterator[Suite]:
    run = uuid.uuid4().hex[:8]

    def settings(cls: Any, name: str, **values: Any) -> Any:
        prefix = f"{name}-ret-{run}"
        return service_settings(
            cls,
            servers,
            f"{name.replace('-', '')}_ret_{run}",
            kafka_consumer_group_prefix=prefix,
            **values,
        )

    hubspot = CRM_VENDORS.FakeHubSpot()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    with (
        NOTIFY_SUPPORT.SmtpServer(NOTIFY_SUPPORT.SmtpSink()) as smtp,
        CRM_VENDORS.serve(hubspot.app()) as hubspot_url,
    ):
        notes_settings = settings(NotesSettings, "notes")
        notify_settings = settings(
            NotifySettings,
            "notify",
            smtp_port=smtp.port,
            smtp_tls="none",
            smtp_timeout_s=5.0,
            sender_poll_s=0.05,
            sender_instance=f"ret-{run}",
            tenant_cache_s=0.0,
        )
        crm_settings = settings(
            CrmSyncSettings,
            "crm-sync",
            credentials_key=new_key(),
            allow_private_urls=True,
            hubspot_url=hubspot_url,
            poll_interval_s=0.05,
            unknown_tenant_grace_s=30.0,
        )
        retention_settings = settings(
            RetentionSettings, "retention", sweep_interval_s=0, check_interval_s=0.2
        )
        notify_app, crm_app = create_notify(notify_settings), create_crm_sync(crm_settings)
        intake_settings = settings(IntakeSettings, "intake")
        intake_app = create_intake(intake_settings)
        notes_app = create_notes(notes_settings)
        retention_app = create_retention(retention_settings)
        apps = (intake_app, notes_app, notify_app, crm_app, retention_app)
        await start_groups_at_log_end(
            servers.kafka_bootstrap_servers,
            [s for app in apps for s in app.state.runtime.subscriptions()],
        )
        async with (
            running_app(intake_app) as intake,
            running_app(notes_app) as notes,
            running_app(notify_app),
            running_app(crm_app) as crm,
            running_app(retention_app) as retention,
        ):
            yield Suite(
                intake=intake,
                notes=notes,
                crm=crm,
                retention=retention,
                notes_app=notes_app,
                notify_app=notify_app,
                crm_app=crm_app,
                smtp=smtp,
                hubspot=hubspot,
                intake_db=mongo[intake_settings.mongodb_database],
                notes_db=mongo[notes_settings.mongodb_database],
                notify_db=mongo[notify_settings.mongodb_database],
                crm_db=mongo[crm_settings.mongodb_database],
                retention_db=mongo[retention_settings.mongodb_database],
            )
    await mongo.close()


# --- the world of one test ------------------------------------------------------------------


@dataclass
class Caller:
    """A caller of this test alone."""

    phone: str
    name: str
    email: str

    @classmethod
    def new(cls) -> Caller:
        digits = f"{uuid.uuid4().int % 10**8:08d}"
        return cls(f"+49151{digits}", f"Erika Test{uuid.uuid4().hex[:6]}", f"e{digits}@example.de")

    def ids(self) -> list[dict[str, str]]:
        return [{"kind": "phone", "value": self.phone}, {"kind": "email", "value": self.email}]


async def _tenant(suite: Suite, *recipients: str) -> str:
    """A client with e-mail recipients and a HubSpot connector."""
    body = {
        "name": "Hausverwaltung Lindner",
        "industry": "other",
        "contract_status": "active",
        "recipients": [
            {"channel": "email", "address": r, "contact_person": f"Frau {r[:4]}"}
            for r in recipients
        ],
    }
    reply = await suite.intake.post("/v1/tenants", json=body, headers=OPERATOR)
    assert reply.status_code == 201, reply.text
    tenant: str = reply.json()["id"]
    # retention refuses sweeps and requests naming a tenant it has not learnt of (yet)
    await until(lambda: suite.retention_db.tenants.find_one({"_id": tenant}))
    token = f"hubspot-{uuid.uuid4().hex}"
    suite.hubspot.tokens.add(token)
    connector = {"credentials": {"token": token}, "region": "EU"}
    put = await suite.crm.put(
        "/v1/connectors/hubspot", json=connector, headers=auth_header("client", tenant=tenant)
    )
    assert put.status_code == 200, put.text
    return tenant


def _recipient() -> str:
    return f"buero-{uuid.uuid4().hex[:8]}@kanzlei.example"


async def _call(
    suite: Suite, tenant: str, caller: Caller, *, days_ago: float = 0, recording: str = ""
) -> str:
    """A captured call; the id of its note (once notes has it)."""
    body: dict[str, Any] = {
        "tenant_id": tenant,
        "caller": {"name": caller.name, "phone": caller.phone, "email": caller.email},
        "concern": "Bitte um Rückruf wegen der Nebenkostenabrechnung",
        "started_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
    }
    if recording:
        body["recording"] = {"consent": True, "url": recording}
    reply = await suite.intake.post("/v1/calls", json=body, headers=AGENT)
    assert reply.status_code == 201, reply.text
    call_id = reply.json()["id"]
    note = await until(lambda: suite.notes_db.notes.find_one({"call_id": call_id}))
    note_id: str = note["_id"]
    return note_id


async def _settled(suite: Suite, note_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The note's e-mail delivery and CRM transfer, once neither is pending any more."""

    async def delivery() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await suite.notify_db.deliveries.find_one({"note_id": note_id})
        return doc if doc and doc["status"] != "pending" else None

    async def transfer() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await suite.crm_db.transfers.find_one(
            {"note_id": note_id, "operation": "sync"}
        )
        return doc if doc and doc["status"] not in ("pending", "sending") else None

    return await until(delivery), await until(transfer)


async def _sent_and_synced(suite: Suite, *note_ids: str) -> None:
    for note_id in note_ids:
        sent, synced = await _settled(suite, note_id)
        assert (sent["status"], synced["status"]) == ("sent", "synced"), (sent, synced)


async def _finished(suite: Suite, reply: httpx.Response, kind: str) -> dict[str, Any]:
    assert reply.status_code in (201, 202), reply.text
    url = f"/v1/{kind}/{reply.json()['id']}"

    async def done() -> dict[str, Any] | None:
        found: dict[str, Any] = (await suite.retention.get(url, headers=OPERATOR)).json()
        return found if found["status"] not in ("running", "open") else None

    return await until(done)


async def _sweep(suite: Suite, tenant: str) -> dict[str, Any]:
    body = {"tenant_id": tenant}
    return await _finished(
        suite, await suite.retention.post("/v1/sweeps", json=body, headers=OPERATOR), "sweeps"
    )


async def _dsr(suite: Suite, **body: Any) -> dict[str, Any]:
    return await _finished(
        suite, await suite.retention.post("/v1/dsr", json=body, headers=OPERATOR), "dsr"
    )


def _erased(receipts: list[dict[str, Any]], service: str, collection: str) -> int:
    return sum(
        c["count"]
        for r in receipts
        if r["service"] == service
        for c in r["erased"]
        if c["collection"] == collection
    )


async def _note_ids(db: Any, collection: str, tenant: str, **extra: Any) -> set[str]:
    return {d["note_id"] async for d in db[collection].find({"tenant_id": tenant, **extra})}


async def _mentions(db: Any, *values: str) -> list[str]:
    """The collections of `db` in which any document mentions any of `values`."""
    found = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            text = repr(doc)
            if any(v in text for v in values):
                found.append(name)
                break
    return sorted(found)


async def _redeliver(servers: ServerEndpoints, tenant: str, topics: tuple[str, ...]) -> int:
    """Send every record of `tenant` on `topics` again, as it was (value, key, headers)."""
    bootstrap = servers.kafka_bootstrap_servers
    records = await records_of(bootstrap, topics, tenant)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(r.topic, r.value, key=r.key, headers=list(r.headers))
    finally:
        await producer.stop()
    return len(records)


# --- the tests ----------------------------------------------------------------------------------


async def test_r_ret_1_and_r_ret_6_a_sweep_erases_the_old_call_in_notify_and_crm_sync(
    suite: Suite,
) -> None:
    tenant = await _tenant(suite, _recipient())
    old = await _call(suite, tenant, Caller.new(), days_ago=61)
    new = await _call(suite, tenant, Caller.new(), days_ago=1)
    await _sent_and_synced(suite, old, new)

    sweep = await _sweep(suite, tenant)
    assert sweep["status"] == "completed"
    assert {d["_id"] async for d in suite.notify_db.notes.find({"tenant_id": tenant})} == {new}
    assert await _note_ids(suite.notify_db, "deliveries", tenant) == {new}
    assert await _note_ids(suite.crm_db, "transfers", tenant) == {new}
    assert await _note_ids(suite.crm_db, "records", tenant) == {new}
    assert await _note_ids(suite.crm_db, "contacts", tenant) == {new}
    # the account stays: recipients, their consents, the connector (R-RET-4 runs from its end)
    assert await suite.notify_db.consents.count_documents({"tenant_id": tenant}) == 1
    assert await suite.crm_db.connectors.count_documents({"tenant_id": tenant}) == 1

    receipts = sweep["receipts"]
    assert {r["service"] for r in receipts} == {"intake", "notes", "notify", "crm-sync"}
    assert len(receipts) == 4 * len(sweep["orders"])  # every order, every service
    counts = {
        (s, c): _erased(receipts, s, c)
        for s, c in [
            ("notify", "notes"),
            ("notify", "deliveries"),
            ("crm-sync", "transfers"),
            ("crm-sync", "records"),
            ("crm-sync", "contacts"),
        ]
    }
    assert set(counts.values()) == {1}, counts
    verdict = (await suite.retention.get("/v1/receipts/verify", headers=OPERATOR)).json()
    assert verdict["valid"]


async def test_r_dsr_18_a_restriction_stops_the_callers_e_mail_and_crm_transfer_until_lifted(
    suite: Suite,
) -> None:
    """While restricted, the caller's notes are kept but neither mailed, nor sent to the CRM,
    nor shown to the client with what they hold about the caller, nor found by a search."""
    recipient = _recipient()
    tenant = await _tenant(suite, recipient)
    restricted, other = Caller.new(), Caller.new()
    request = await _dsr(
        suite, right="restriction", identifiers=restricted.ids()[:1], tenant_id=tenant
    )
    assert request["status"] == "completed"
    assert {p["service"] for p in request["parts"]} >= {"notify", "crm-sync"}

    stopped = await _call(suite, tenant, restricted)
    going = await _call(suite, tenant, other)
    await _sent_and_synced(suite, going)
    delivery, transfer = await _settled(suite, stopped)
    assert (delivery["status"], delivery["reason"]) == ("suppressed", RESTRICTED)
    assert (transfer["status"], transfer["last_detail"]) == ("cancelled", RESTRICTED)
    assert transfer["content"]["caller_name"] == restricted.name  # kept, not processed
    mails = [m.text() for m in suite.smtp.sink.to(recipient)]
    assert len(mails) == 1
    assert other.name in mails[0]
    assert restricted.name not in mails[0]
    calls = [repr(c) for c in suite.hubspot.objects["calls"].values()]
    contacts = repr(suite.hubspot.contacts)
    assert restricted.phone not in contacts
    assert not any(restricted.name in c for c in calls)
    assert other.phone in contacts
    client = auth_header("client", tenant=tenant)
    listed = (await suite.notes.get("/v1/notes", headers=client)).json()["items"]
    shown = {n["id"]: n for n in listed}
    assert set(shown) == {stopped, going}
    assert shown[stopped]["restricted"] is True
    assert shown[stopped]["caller"] is None
    assert shown[stopped]["concern"] is None
    assert restricted.phone not in repr(listed)
    assert shown[going]["restricted"] is False
    assert shown[going]["caller"]["phone"] == other.phone
    one = (await suite.notes.get(f"/v1/notes/{stopped}", headers=client)).json()
    assert (one["restricted"], one["caller"], one["call_id"]) == (
        True,
        None,
        shown[stopped]["call_id"],
    )
    found = await suite.notes.get("/v1/notes", headers=client, params={"q": restricted.name})
    assert found.json()["items"] == []
    kept = await suite.notes.delete(f"/v1/notes/{stopped}", headers=client)
    assert kept.status_code == 409, kept.text
    assert "restricted" in kept.json()["detail"]
    rating = {"score": 2, "comment": "zu spät zurückgerufen"}
    rated = await suite.notes.post(f"/v1/notes/{stopped}/rating", json=rating, headers=client)
    assert rated.status_code == 409, rated.text

    lift = await suite.retention.post(f"/v1/dsr/{request['id']}/lift", headers=OPERATOR)
    assert lift.status_code == 200, lift.text
    who = subject_ids(phone=restricted.phone)

    async def lifted() -> bool:
        return not any([await p.is_restricted(tenant, who) for p in suite.participants()])

    await until(lifted)
    again = await _call(suite, tenant, restricted)
    await _sent_and_synced(suite, again)
    one = (await suite.notes.get(f"/v1/notes/{stopped}", headers=client)).json()
    assert (one["restricted"], one["caller"]["phone"]) == (False, restricted.phone)
    deleted = await suite.notes.delete(f"/v1/notes/{stopped}", headers=client)
    assert deleted.status_code == 204, deleted.text
    assert restricted.phone in repr(suite.hubspot.contacts)
    assert any(restricted.name in m.text() for m in suite.smtp.sink.to(recipient))


async def test_r_dsr_17_erasure_deletes_exactly_that_subjects_data_in_notify_and_crm_sync(
    suite: Suite, servers: ServerEndpoints
) -> None:
    tenant = await _tenant(suite, _recipient())
    erased, kept = Caller.new(), Caller.new()
    mine = [await _call(suite, tenant, erased, days_ago=d) for d in (1, 20)]
    theirs = await _call(suite, tenant, kept, days_ago=1)
    await _sent_and_synced(suite, *mine, theirs)
    assert await _mentions(suite.notify_db, erased.phone) == ["notes"]
    assert await _mentions(suite.crm_db, erased.phone) == ["contacts", "records", "transfers"]

    request = await _dsr(suite, right="erasure", identifiers=erased.ids())
    assert request["status"] == "completed"
    for db in (suite.notify_db, suite.crm_db):
        assert await _mentions(db, erased.phone, erased.name, erased.email) == []
    assert await _mentions(suite.notify_db, kept.phone, kept.name) == ["notes"]
    assert await _mentions(suite.crm_db, kept.phone) == ["contacts", "records", "transfers"]
    # the ledger entries and transfer logs of the erased notes stay, with nothing left that
    # leads to the caller
    assert await _note_ids(suite.crm_db, "transfers", tenant) == {*mine, theirs}
    assert await _note_ids(suite.notify_db, "deliveries", tenant) == {*mine, theirs}

    receipts = (
        await suite.retention.get(
            "/v1/receipts", params={"request_id": request["id"]}, headers=OPERATOR
        )
    ).json()["items"]
    assert _erased(receipts, "notify", "notes") == 2
    assert _erased(receipts, "crm-sync", "transfers") == 2
    assert _erased(receipts, "crm-sync", "records") == 2
    assert _erased(receipts, "crm-sync", "contacts") == 1

    # Kafka keeps `call.received` and `note.created` 30 days: redelivered (a replay, a reset
    # group), they must not bring the erased caller back anywhere, nor send the note again
    mails, crm_calls = len(suite.smtp.sink.messages), len(suite.hubspot.objects["calls"])
    assert await _redeliver(servers, tenant, ("call.received", "note.created")) >= 6
    after = await _call(suite, tenant, kept, days_ago=0)  # behind the redelivered, in order
    await _sent_and_synced(suite, after)
    for db in (suite.notes_db, suite.notify_db, suite.crm_db):
        assert await _mentions(db, erased.phone, erased.name, erased.email) == []
    assert len(suite.smtp.sink.messages) == mails + 1
    assert len(suite.hubspot.objects["calls"]) == crm_calls + 1


async def test_r_dsr_15_access_returns_notifys_and_crm_syncs_records(suite: Suite) -> None:
    recipient, colleague = _recipient(), _recipient()
    tenant = await _tenant(suite, recipient, colleague)
    caller = Caller.new()
    note = await _call(suite, tenant, caller, days_ago=3)
    await _sent_and_synced(suite, note)

    request = await _dsr(suite, right="access", identifiers=caller.ids())
    assert request["status"] == "completed"
    export = (await suite.retention.get(f"/v1/dsr/{request['id']}/export", headers=OPERATOR)).json()
    by_service = {s["service"]: s["records"] for s in export["services"]}
    notify = by_service["notify"]
    assert [(r["collection"], r["data"]["id"]) for r in notify] == [("notes", note)]
    assert notify[0]["data"]["caller"]["name"] == caller.name
    crm = by_service["crm-sync"]
    assert sorted(r["collection"] for r in crm) == ["contacts", "records", "transfers"]
    assert all(r["data"]["caller_phone"] == caller.phone for r in crm)
    assert not any("claim" in r["data"] or "credentials" in r["data"] for r in crm)
    for record in [*notify, *crm]:
        assert record["purpose"]
        assert record["recipients"]
        assert record["retained_until"]

    # a recipient sees their own entries: never the colleague's address
    request = await _dsr(
        suite, right="access", identifiers=[{"kind": "email", "value": recipient.upper()}]
    )
    export = (await suite.retention.get(f"/v1/dsr/{request['id']}/export", headers=OPERATOR)).json()
    records = next(s["records"] for s in export["services"] if s["service"] == "notify")
    assert sorted(r["collection"] for r in records) == ["consents", "deliveries", "tenants"]
    assert colleague not in repr(records)
    profile = next(r["data"] for r in records if r["collection"] == "tenants")
    assert [r["address"] for r in profile["recipients"]] == [recipient]


async def test_r_rec_1_a_withdrawn_recording_consent_removes_the_callers_recording_references(
    suite: Suite, servers: ServerEndpoints
) -> None:
    """The caller withdraws (notify's registry publishes it): the references to their
    recordings leave intake and notes at once; another caller's, and a grant, change nothing."""
    tenant = await _tenant(suite, _recipient())
    withdrawing, other = Caller.new(), Caller.new()
    urls = [f"https://rec.example/{uuid.uuid4().hex}.ogg" for _ in range(3)]
    mine = [await _call(suite, tenant, withdrawing, recording=u) for u in urls[:2]]
    theirs = await _call(suite, tenant, other, recording=urls[2])

    def change(caller: Caller, status: ConsentStatus) -> Event[ConsentChanged]:
        return recording_consent(tenant, caller.phone, status=status)

    granted, withdrawn = (
        change(other, ConsentStatus.GRANTED),
        change(withdrawing, ConsentStatus.WITHDRAWN),
    )
    await produce(servers.kafka_bootstrap_servers, [encode(granted), encode(withdrawn)])

    async def references() -> dict[str, set[str]] | None:
        found: dict[str, set[str]] = {}
        for name, db, collection in (
            ("intake", suite.intake_db, "calls"),
            ("notes", suite.notes_db, "notes"),
        ):
            async for doc in db[collection].find({"tenant_id": tenant}):
                url = (doc.get("recording") or {}).get("url")
                if url:
                    found.setdefault(name, set()).add(url)
        return found if found == {"intake": {urls[2]}, "notes": {urls[2]}} else None

    await until(references)
    for note_id in [*mine, theirs]:
        note = await suite.notes_db.notes.find_one({"_id": note_id})
        assert note["recording"]["consent"] is True  # what was declared then stays on record

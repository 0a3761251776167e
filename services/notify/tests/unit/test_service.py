"""Use cases against an in-memory database: event order, redelivery, withdrawal, deletion."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from switchboard_contracts import make_event
from switchboard_contracts.common import Caller, SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.tenants import Channel, Industry
from switchboard_notify.batch import circumstances
from switchboard_notify.config import NotifySettings
from switchboard_notify.domain import RESTRICTED, TenantMismatch
from switchboard_notify.ledger import Ledger
from switchboard_notify.registry import ConsentRegistry
from switchboard_notify.repository import NotesRepository, TenantsRepository
from switchboard_notify.sender import Sender
from switchboard_notify.service import NotifyService, Policy
from switchboard_notify.smtp import SmtpMailer
from switchboard_notify.transport import Accepted
from switchboard_platform.health import Health
from switchboard_platform.testing.fakes import FakeDatabase

from ..support import CALLER, address, new_tenant, note_created, note_deleted, tenant_changed


@pytest.fixture
def db() -> Any:
    return FakeDatabase()


@pytest.fixture
def service(db: Any) -> NotifyService:
    database = cast(Any, db)
    return NotifyService(
        TenantsRepository(database),
        NotesRepository(database),
        Ledger(database),
        ConsentRegistry(database),
        policy=Policy(notice_version="onb-v1", attempt_limit=3, id_domain="example.de"),
    )


def _statuses(db: Any, tenant: str) -> list[str]:
    return sorted(d["status"] for d in db["deliveries"]._collection.find({"tenant_id": tenant}))


async def test_r_note_1_redelivered_note_plans_its_deliveries_once(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)]))
    note = note_created(tenant)
    for _ in range(3):
        await service.record_note(note)
    assert _statuses(db, tenant) == ["pending"]
    stored = db["deliveries"]._collection.find_one({"tenant_id": tenant})
    assert (stored["category"], stored["recipient"]) == ("call_data", address(tenant))
    assert stored["retention_from"] == note.data.started_at


async def test_a_note_that_arrives_before_its_tenant_is_planned_when_the_tenant_does(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    await service.record_note(note_created(tenant))
    assert _statuses(db, tenant) == []
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)]))
    assert _statuses(db, tenant) == ["pending"]
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)]))
    assert _statuses(db, tenant) == ["pending"]


async def test_a_note_deleted_before_it_was_created_is_never_planned(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)]))
    note = note_created(tenant)
    await service.forget_note(note_deleted(tenant, note.data.note_id))
    await service.record_note(note)
    assert _statuses(db, tenant) == []


async def test_deletion_cancels_pending_deliveries_and_forgets_the_content(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)]))
    note = note_created(tenant)
    await service.record_note(note)
    await service.forget_note(note_deleted(tenant, note.data.note_id))
    assert _statuses(db, tenant) == ["cancelled"]
    copy = db["notes"]._collection.find_one({"_id": note.data.note_id})
    assert not {"caller", "concern", "caller_phone", "contact_person"} & set(copy)


async def test_r_con_2_a_withdrawal_from_another_service_suppresses_pending_deliveries(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    to = address(tenant)
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, to, None)]))
    await service.record_note(note_created(tenant))
    withdrawal = ConsentChanged(
        consent_id="w-1",
        tenant_id=tenant,
        subject=SubjectId(kind=SubjectKind.EMAIL, value=to),
        purpose=ConsentPurpose.NOTIFICATION,
        channel=ConsentChannel.EMAIL,
        status=ConsentStatus.WITHDRAWN,
        occurred_at=dt.datetime.now(dt.UTC),
        method=ConsentMethod.WRITTEN,
        text_version="v1",
        recorded_by="system:crm",
    )
    event = make_event(withdrawal, tenant_id=tenant, source="/elsewhere")
    await service.store_consent(event)
    await service.store_consent(event)  # redelivered: stored once
    assert _statuses(db, tenant) == ["suppressed"]
    history = await service.consent_history(tenant, to)
    assert [r.status for r in history] == ["granted", "withdrawn"]


async def test_r_sec_3_secrecy_bound_tenants_note_copy_never_holds_caller_or_concern(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    await service.learn_tenant(
        tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)], industry=Industry.TAX)
    )
    note = note_created(tenant)
    await service.record_note(note)
    copy = db["notes"]._collection.find_one({"_id": note.data.note_id})
    assert not {"caller", "concern", "caller_phone"} & set(copy)


async def test_events_naming_another_tenant_than_their_envelope_are_refused(
    service: NotifyService,
) -> None:
    note = note_created("t-a")
    forged = note.model_copy(update={"tenantid": "t-b"})
    with pytest.raises(TenantMismatch):
        await service.record_note(forged)


async def test_r_dsr_18_a_restricted_callers_note_is_planned_suppressed_even_if_not_stored(
    db: Any,
) -> None:
    """A secrecy-bound tenant's copy keeps no caller: the restriction is asked when planning."""
    restricted_phone = "+4915211014450"
    asked: list[tuple[str, list[str]]] = []

    async def restricted(tenant_id: str, identifiers: Sequence[SubjectId]) -> bool:
        asked.append((tenant_id, [i.value for i in identifiers]))
        return any(i.value == restricted_phone for i in identifiers)

    database = cast(Any, db)
    service = NotifyService(
        TenantsRepository(database),
        NotesRepository(database),
        Ledger(database),
        ConsentRegistry(database),
        policy=Policy(notice_version="onb-v1", attempt_limit=3, id_domain="example.de"),
        restricted=restricted,
    )
    tenant = new_tenant()
    await service.learn_tenant(
        tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)], industry=Industry.LAW)
    )
    stopped = note_created(tenant, caller=Caller(name="Erika Muster", phone=restricted_phone))
    going = note_created(tenant, caller=Caller(name="Max Muster", phone="+4915211014451"))
    for note in (stopped, going):
        await service.record_note(note)
    deliveries = db["deliveries"]._collection
    suppressed = deliveries.find_one({"note_id": stopped.data.note_id})
    assert (suppressed["status"], suppressed["reason"]) == ("suppressed", RESTRICTED)
    assert deliveries.find_one({"note_id": going.data.note_id})["status"] == "pending"
    assert asked[0] == (tenant, [restricted_phone, "Erika Muster"])
    assert "caller" not in db["notes"]._collection.find_one({"_id": stopped.data.note_id})


async def test_r_dsr_18_the_sender_asks_for_each_claimed_notes_caller(
    service: NotifyService, db: Any
) -> None:
    tenant = new_tenant()
    await service.learn_tenant(tenant_changed(tenant, [(Channel.EMAIL, address(tenant), None)]))
    note = note_created(tenant)
    await service.record_note(note)
    claimed = list(db["deliveries"]._collection.find({"tenant_id": tenant}))

    async def restricted(tenant_id: str, identifiers: Sequence[SubjectId]) -> bool:
        return SubjectId(kind=SubjectKind.PHONE, value=CALLER.phone) in identifiers

    database = cast(Any, db)
    known = await circumstances(
        claimed,
        tenants=TenantsRepository(database),
        notes=NotesRepository(database),
        registry=ConsentRegistry(database),
        restricted=restricted,
    )
    assert known.is_restricted(tenant, note.data.note_id)
    unrestricted = await circumstances(
        claimed,
        tenants=TenantsRepository(database),
        notes=NotesRepository(database),
        registry=ConsentRegistry(database),
    )
    assert not unrestricted.is_restricted(tenant, note.data.note_id)


class _BrokenGateway:
    """An SMS gateway whose send breaks in a way no transport foresaw."""

    provider = "twilio"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, to: str, text: str) -> Accepted:
        self.calls += 1
        raise AttributeError("'list' object has no attribute 'get'")

    async def close(self) -> None:
        return None


def _sender(
    database: Any, ledger: Ledger, settings: NotifySettings, sms: Any, health: Health
) -> Sender:
    """A sender over the fake database, with `sms` as its gateway."""
    return Sender(
        ledger=ledger,
        notes=NotesRepository(database),
        tenants=TenantsRepository(database),
        registry=ConsentRegistry(database),
        mailer=SmtpMailer(settings),
        sms=sms,
        settings=settings,
        health=health,
        events_written=lambda: None,
    )


async def test_a_send_that_breaks_unexpectedly_is_a_counted_attempt_and_ends_at_the_limit(
    service: NotifyService, db: Any
) -> None:
    """It was swallowed as "broke off": the claim ran out and the SMS went again, for ever
    (7 SMS in 14 s in the probe), the delivery pending, its attempts never counted."""
    tenant = new_tenant()
    mobile = "+4915112345678"
    await service.learn_tenant(tenant_changed(tenant, [(Channel.SMS, mobile, None)]))
    await service.record_note(note_created(tenant))
    database = cast(Any, db)
    ledger = Ledger(database)
    settings = NotifySettings(
        environment="test", max_attempts=3, retry_base_s=0.001, retry_max_s=0.001
    )
    gateway = _BrokenGateway()
    sender = _sender(database, ledger, settings, gateway, Health())
    for _ in range(settings.max_attempts + 2):
        claimed = await ledger.claim_due(
            time.time() + 3600, 10, owner="o", instance="i", lease_s=60
        )
        known = await circumstances(
            claimed,
            tenants=TenantsRepository(database),
            notes=NotesRepository(database),
            registry=ConsentRegistry(database),
        )
        for doc in claimed:
            await sender._attempt(doc, known)
    [entry] = db["deliveries"]._collection.find({"tenant_id": tenant})
    assert (entry["status"], entry["attempts"]) == ("failed", settings.max_attempts)
    assert entry["last_error"] == "twilio internal error (AttributeError)"
    assert gateway.calls == settings.max_attempts


class _LedgerWhileTheDatabaseIsAway(Ledger):
    """A ledger whose database answers only from the third call on."""

    def __init__(self, database: Any) -> None:
        super().__init__(database)
        self.releases = 0
        self.answered = asyncio.Event()

    async def release_instance(self, instance: str) -> int:
        self.releases += 1
        if self.releases < 3:
            raise ServerSelectionTimeoutError("127.0.0.1:1: connection refused")
        self.answered.set()
        return await super().release_instance(instance)


async def test_the_sender_starts_while_the_database_is_away_and_waits_for_it(db: Any) -> None:
    """Its start released the earlier claims before anything else: with MongoDB down,
    notify's start-up raised and the process exited (a crash loop), where every other
    service stays up, not ready."""
    database = cast(Any, db)
    ledger = _LedgerWhileTheDatabaseIsAway(database)
    settings = NotifySettings(environment="test", sender_poll_s=0.05)
    sender = _sender(database, ledger, settings, _BrokenGateway(), Health())
    await sender.start()  # returns at once: the loop waits for the database
    assert sender.running
    async with asyncio.timeout(10):
        await ledger.answered.wait()
    assert ledger.releases == 3
    assert sender.running
    await sender.stop()
    assert not sender.running

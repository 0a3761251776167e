"""The participant's side of retention and data-subject requests, on the session's database.

The handlers are called directly (no broker): each test reads what the service's database
holds afterwards and the answer waiting in the participant's outbox. The services' own tests
run the same over Kafka with the retention service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event, decode, make_event
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChanged,
)
from switchboard_contracts.dsr import Correction, DataSubjectRight, DsrFragment, DsrRequested
from switchboard_contracts.retention import (
    CategoryScope,
    LegalHold,
    RetentionCompleted,
    RetentionDue,
    RetentionReason,
    SubjectScope,
    TenantScope,
)
from switchboard_contracts.samples import sample_payload
from switchboard_platform.mongo import MongoDatabase, create_mongo_client
from switchboard_platform.outbox import OUTBOX, PARKED, SINCE, OutboxStore, PendingEntry, _entry
from switchboard_platform.retention_participant import (
    LEGITIMATE_INTEREST,
    Inventory,
    PersonalData,
    RetentionParticipant,
    Tombstone,
)
from switchboard_platform.subjects import Restricted, subject_ids, subject_key
from switchboard_platform.testing.consents import recording_consent
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

NOW = datetime.now(UTC)
PHONE, NAME, EMAIL = SubjectKind.PHONE, SubjectKind.NAME, SubjectKind.EMAIL
CALLS = PersonalData(
    collection="calls",
    purpose="Call notes for the client",
    recipients=("the client",),
    subject_fields={PHONE: ("caller.phone",), NAME: ("caller.name",), EMAIL: ("caller.email",)},
    rectifiable={"name": "caller.name", "email": "caller.email"},
    private_fields=("secret_key",),
)
PROFILES = PersonalData(
    collection="profiles",
    purpose="The client's account",
    subject_fields={PHONE: ("contacts",)},
    erase_by_subject=False,
    kept_reason="part of the client's account: changed by the client",
)
INVENTORY = Inventory(service="svc", collections=(CALLS, PROFILES), chunk=3)


@pytest.fixture
async def db(servers: ServerEndpoints) -> AsyncIterator[MongoDatabase]:
    client = create_mongo_client(servers.mongodb_url, app_name="participant-test")
    yield client[f"participant_{uuid.uuid4().hex[:10]}"]
    await client.close()


@pytest.fixture
def participant(db: MongoDatabase) -> RetentionParticipant:
    p = RetentionParticipant(INVENTORY)
    p.use(db)
    return p


def _phone() -> str:
    return f"+49151{uuid.uuid4().int % 10**8:08d}"


def _call(tenant: str, phone: str, days_ago: float, **extra: Any) -> dict[str, Any]:
    return {
        "_id": uuid.uuid4().hex,
        "tenant_id": tenant,
        "caller": {"phone": phone, "name": "Erika Muster", "email": "erika@example.de"},
        "concern": "Rückruf",
        "category": "call_data",
        "retention_from": NOW - timedelta(days=days_ago),
        "secret_key": "k",
        **extra,
    }


def _due(scope: Any, *holds: LegalHold, tenant: str = "*") -> Event[RetentionDue]:
    order = RetentionDue(
        request_id=uuid.uuid4().hex,
        scope=scope,
        reason=RetentionReason.RETENTION_POLICY,
        issued_at=NOW,
        holds=holds,
    )
    return make_event(order, tenant_id=tenant, source="/switchboard/retention")


def _dsr(right: DataSubjectRight, *ids: SubjectId, **fields: Any) -> Event[DsrRequested]:
    request = DsrRequested(
        request_id=uuid.uuid4().hex,
        right=right,
        identifiers=ids,
        requested_at=NOW,
        due_at=NOW + timedelta(days=30),
        retention_periods={DataCategory.CALL_DATA: "P60D"},
        **fields,
    )
    return make_event(request, tenant_id=fields.get("tenant_id") or "*", source="/test")


async def _answers(db: MongoDatabase) -> list[Event[Any]]:
    events = []
    async for doc in db[INVENTORY.answers_collection].find({}):
        for entry in doc.get("_outbox") or []:
            events.append(decode(entry["topic"], entry["value"], entry["headers"]))
    return events


async def _ids(db: MongoDatabase, collection: str = "calls") -> set[str]:
    return {d["_id"] async for d in db[collection].find({}, {"_id": 1})}


async def test_r_ret_1_category_sweep_deletes_what_is_due_in_every_tenant(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    old = [_call(t, _phone(), 61) for t in ("t1", "t2") for _ in range(4)]  # > chunk of 3
    new = [_call("t1", _phone(), 1), _call("t2", _phone(), 59)]
    other = _call("t1", _phone(), 400, category="customer_account")
    await db.calls.insert_many([*old, *new, other])
    cutoff = NOW - timedelta(days=60)
    await participant.on_retention_due(
        _due(CategoryScope(kind="category", category=DataCategory.CALL_DATA, cutoff=cutoff))
    )
    assert await _ids(db) == {d["_id"] for d in [*new, other]}
    (answer,) = await _answers(db)
    receipt = answer.data
    assert isinstance(receipt, RetentionCompleted)
    assert [(c.collection, c.category, c.count) for c in receipt.erased] == [
        ("calls", DataCategory.CALL_DATA, 8)
    ]
    assert receipt.service == "svc"
    assert receipt.retained == ()


async def test_r_ret_1_a_clock_set_by_update_is_swept_on_every_server(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    """nx-27017 stores a `$set` datetime as a naive string; it is still compared as a time."""
    due, long_due, same_day_later, recent = (_call("t1", _phone(), 1) for _ in range(4))
    await db.calls.insert_many([due, long_due, same_day_later, recent])
    cutoff = NOW - timedelta(days=60)
    clocks = {
        due["_id"]: cutoff - timedelta(hours=1),
        long_due["_id"]: cutoff - timedelta(days=3),
        same_day_later["_id"]: cutoff + timedelta(minutes=1),
        recent["_id"]: NOW,
    }
    for doc_id, clock in clocks.items():
        await db.calls.update_one({"_id": doc_id}, {"$set": {"retention_from": clock}})
    await participant.on_retention_due(
        _due(CategoryScope(kind="category", category=DataCategory.CALL_DATA, cutoff=cutoff))
    )
    assert await _ids(db) == {same_day_later["_id"], recent["_id"]}


async def test_r_ret_5_a_legal_hold_keeps_exactly_what_it_covers_and_says_why(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    held_phone = _phone()
    held = _call("t1", held_phone, 70)
    gone = [_call("t1", _phone(), 70), _call("t2", held_phone, 70)]
    await db.calls.insert_many([held, *gone])
    hold = LegalHold(
        hold_id="hold-1",
        reason="tax audit",
        until=(NOW + timedelta(days=9)).date(),
        tenant_id="t1",
        subject=SubjectId(kind=PHONE, value=held_phone),
    )
    scope = CategoryScope(
        kind="category", category=DataCategory.CALL_DATA, cutoff=NOW - timedelta(days=60)
    )
    await participant.on_retention_due(_due(scope, hold))
    assert await _ids(db) == {held["_id"]}
    (answer,) = await _answers(db)
    (kept,) = answer.data.retained
    assert (kept.collection, kept.count, kept.hold_id) == ("calls", 1, "hold-1")
    assert "tax audit" in kept.reason
    assert kept.retained_until == hold.until
    assert answer.data.erased[0].count == 2


async def test_r_ret_2_a_recording_reference_goes_after_30_days_unless_held(
    db: MongoDatabase,
) -> None:
    """A shorter-lived field (the recording's reference, 30 days) leaves documents kept for
    longer (the call, 60 days); a hold keeps it; a document without one is not touched."""
    calls = replace(CALLS, shorter_lived={DataCategory.RECORDING: ("recording.url",)})
    participant = RetentionParticipant(Inventory(service="svc", collections=(calls,)))
    participant.use(db)
    held_phone = _phone()

    def recorded(tenant: str, phone: str, days: float) -> dict[str, Any]:
        url = f"https://rec.example/{uuid.uuid4().hex}.ogg"
        return _call(tenant, phone, days, recording={"consent": True, "url": url})

    due, young, held = (
        recorded("t1", _phone(), 31),
        recorded("t1", _phone(), 29),
        recorded("t1", held_phone, 40),
    )
    unrecorded = _call("t1", _phone(), 31, recording=None)
    await db.calls.insert_many([due, young, held, unrecorded])
    hold = LegalHold(
        hold_id="hold-r",
        reason="court order",
        until=(NOW + timedelta(days=9)).date(),
        subject=SubjectId(kind=PHONE, value=held_phone),
    )
    scope = CategoryScope(
        kind="category", category=DataCategory.RECORDING, cutoff=NOW - timedelta(days=30)
    )
    await participant.on_retention_due(_due(scope, hold))

    after = {d["_id"]: d async for d in db.calls.find({})}
    assert set(after) == {due["_id"], young["_id"], held["_id"], unrecorded["_id"]}
    assert after[due["_id"]]["recording"] == {"consent": True}
    assert after[young["_id"]]["recording"] == young["recording"]
    assert after[held["_id"]]["recording"] == held["recording"]
    assert after[unrecorded["_id"]]["recording"] is None
    (answer,) = await _answers(db)
    assert [(c.collection, c.category, c.count) for c in answer.data.erased] == [
        ("calls", DataCategory.RECORDING, 1)
    ]
    (kept,) = answer.data.retained
    assert (kept.category, kept.count, kept.hold_id) == (DataCategory.RECORDING, 1, "hold-r")


@pytest.mark.parametrize("category", [DataCategory.RECORDING, DataCategory.CALL_DATA])
async def test_r_ret_5_a_hold_on_recordings_or_on_the_calls_keeps_the_references(
    db: MongoDatabase, category: DataCategory
) -> None:
    """A tenant's hold naming the category matched no document (calls are call data), so a
    court's order to keep the recordings kept nothing."""
    calls = replace(CALLS, shorter_lived={DataCategory.RECORDING: ("recording.url",)})
    participant = RetentionParticipant(Inventory(service="svc", collections=(calls,)))
    participant.use(db)
    url = f"https://rec.example/{uuid.uuid4().hex}.ogg"
    held = _call("t-held", _phone(), 40, recording={"consent": True, "url": url})
    await db.calls.insert_one(held)
    hold = LegalHold(hold_id="court", reason="court order", tenant_id="t-held", category=category)
    scope = CategoryScope(
        kind="category", category=DataCategory.RECORDING, cutoff=NOW - timedelta(days=30)
    )
    await participant.on_retention_due(_due(scope, hold))
    kept = await db.calls.find_one({"_id": held["_id"]})
    assert kept is not None
    assert kept["recording"]["url"] == url


async def test_r_rec_1_a_withdrawal_naming_a_call_removes_that_recording_in_that_tenant_only(
    db: MongoDatabase,
) -> None:
    participant = _recording_participant(db)
    phone = _phone()

    def recorded(tenant: str) -> dict[str, Any]:
        url = f"https://rec.example/{uuid.uuid4().hex}.ogg"
        return _call(tenant, phone, 1, recording={"consent": True, "url": url})

    named, other_call, other_tenant = recorded("t1"), recorded("t1"), recorded("t2")
    await db.calls.insert_many([named, other_call, other_tenant])
    await participant.on_consent_changed(recording_consent("t1", phone, call_id=named["_id"]))
    after = {d["_id"]: d["recording"] async for d in db.calls.find({})}
    assert after[named["_id"]] == {"consent": True}
    assert after[other_call["_id"]] == other_call["recording"]
    assert after[other_tenant["_id"]] == other_tenant["recording"]


def _recording_participant(db: MongoDatabase) -> RetentionParticipant:
    """A participant of calls whose recording references go after 30 days or on withdrawal."""
    calls = replace(
        CALLS, shorter_lived={DataCategory.RECORDING: ("recording.url",)}, call_field="_id"
    )
    participant = RetentionParticipant(Inventory(service="svc", collections=(calls,)))
    participant.use(db)
    return participant


def _withdrawal(
    tenant: str, phone: str, *, call_id: str | None = None, at: datetime = NOW
) -> Event[ConsentChanged]:
    return recording_consent(tenant, phone, call_id=call_id, occurred_at=at)


async def test_r_rec_1_a_withdrawal_also_covers_a_call_stored_after_it(
    db: MongoDatabase,
) -> None:
    """A withdrawal can arrive before the call it concerns (another topic, a lagging
    consumer): the participant keeps it, and the call stored later asks for it. A withdrawal
    covers the caller's calls started until it (or the one call it names), in its tenant."""
    participant = _recording_participant(db)
    phone, named_phone, other_phone = _phone(), _phone(), _phone()
    caller = [SubjectId(kind=PHONE, value=phone), SubjectId(kind=NAME, value="Erika Muster")]
    whole = _withdrawal("t1", phone)
    await participant.on_consent_changed(whole)
    await participant.on_consent_changed(whole)  # redelivered: kept once
    await participant.on_consent_changed(_withdrawal("t1", named_phone, call_id="call-9"))
    withdrawn = participant.recording_withdrawn
    assert await withdrawn("t1", caller, "call-1", NOW - timedelta(minutes=5))
    # a later call, recorded with consent given again, keeps its recording
    assert not await withdrawn("t1", caller, "call-2", NOW + timedelta(minutes=5))
    assert not await withdrawn("t2", caller, "call-1", NOW - timedelta(minutes=5))
    other = [SubjectId(kind=PHONE, value=other_phone)]
    assert not await withdrawn("t1", other, "call-1", NOW - timedelta(minutes=5))
    named = [SubjectId(kind=PHONE, value=named_phone)]
    assert await withdrawn("t1", named, "call-9", NOW + timedelta(minutes=5))
    assert not await withdrawn("t1", named, "call-8", NOW - timedelta(minutes=5))
    assert await db.consent_withdrawals.count_documents({}) == 2


async def test_r_ret_2_and_r_dsr_17_kept_withdrawals_go_after_30_days_and_with_their_caller(
    db: MongoDatabase,
) -> None:
    calls = replace(CALLS, shorter_lived={DataCategory.RECORDING: ("recording.url",)})
    participant = RetentionParticipant(Inventory(service="svc", collections=(calls,)))
    participant.use(db)
    old, young, erased = _phone(), _phone(), _phone()
    for phone, days in ((old, 31), (young, 29), (erased, 1)):
        await participant.on_consent_changed(
            _withdrawal("t1", phone, at=NOW - timedelta(days=days))
        )
    scope = CategoryScope(
        kind="category", category=DataCategory.RECORDING, cutoff=NOW - timedelta(days=30)
    )
    await participant.on_retention_due(_due(scope))
    subject = SubjectScope(kind="subject", identifiers=(SubjectId(kind=PHONE, value=erased),))
    await participant.on_retention_due(_due(subject))
    kept = [d["subject"] async for d in db.consent_withdrawals.find({})]
    assert kept == [{"phone": young}]


async def test_r_dsr_17_subject_erasure_deletes_that_subject_only_and_keeps_legal_duties(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    phone = _phone()
    mine = [_call("t1", phone, 1), _call("t2", phone, 2)]
    invoice = _call("t1", phone, 3, category="legal_hold")
    others = [_call("t1", _phone(), 1)]
    await db.calls.insert_many([*mine, invoice, *others])
    await db.profiles.insert_one(
        {"_id": "p1", "tenant_id": "t1", "contacts": [phone], "category": "customer_account"}
    )
    subject = SubjectScope(kind="subject", identifiers=(SubjectId(kind=PHONE, value=phone),))
    await participant.on_retention_due(_due(subject))
    assert await _ids(db) == {invoice["_id"], others[0]["_id"]}
    assert await _ids(db, "profiles") == {"p1"}
    (answer,) = await _answers(db)
    assert [(c.collection, c.count) for c in answer.data.erased] == [("calls", 2)]
    reasons = {(r.collection, r.category): r.reason for r in answer.data.retained}
    assert reasons[("calls", DataCategory.LEGAL_HOLD)].startswith("R-RET-5")
    assert "client's account" in reasons[("profiles", DataCategory.CUSTOMER_ACCOUNT)]


async def test_r_dsr_17_a_tombstone_keeps_an_erased_document_from_coming_back(
    db: MongoDatabase,
) -> None:
    """A collection that declares a tombstone keeps only its bookkeeping: a redelivered
    event that would write the document again (by its id) finds it and cannot."""
    notes = PersonalData(
        collection="calls",
        purpose="Call notes for the client",
        subject_fields={PHONE: ("caller.phone",), NAME: ("caller.name",)},
        tombstone=Tombstone(("caller", "concern"), lambda now: {"deleted_at": now}),
    )
    participant = RetentionParticipant(Inventory(service="svc", collections=(notes,)))
    participant.use(db)
    phone = _phone()
    pending = {OUTBOX: [{"seq": "1", "topic": "note.created", "value": phone}], SINCE: "1"}
    erased, kept = _call("t1", phone, 1, **pending), _call("t1", _phone(), 1)
    await db.calls.insert_many([erased, kept])
    subject = SubjectScope(kind="subject", identifiers=(SubjectId(kind=PHONE, value=phone),))
    await participant.on_retention_due(_due(subject))
    await participant.on_retention_due(_due(subject))  # a second erasure finds nothing

    stone = await db.calls.find_one({"_id": erased["_id"]})
    assert stone is not None
    assert phone not in str(stone)  # its pending event went too
    assert set(stone) == {
        "_id",
        "tenant_id",
        "category",
        "retention_from",
        "secret_key",
        "deleted_at",
        "_outbox",  # emptied, not removed: a later event of the document is appended to it
    }
    untouched = await db.calls.find_one({"_id": kept["_id"]})
    assert untouched is not None
    assert untouched["caller"] == kept["caller"]
    with pytest.raises(DuplicateKeyError):
        await db.calls.insert_one(_call("t1", phone, 1, _id=erased["_id"]))
    first, second = await _answers(db)
    assert [(c.collection, c.count) for c in first.data.erased] == [("calls", 1)]
    assert second.data.erased == ()
    with pytest.raises(ValueError, match="would keep"):
        PersonalData(
            collection="x",
            purpose="p",
            subject_fields={PHONE: ("caller_phone",)},
            tombstone=Tombstone(("caller",), lambda now: {}),
        )


async def test_tenant_erasure_takes_everything_of_the_tenant_and_answers_once(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    await db.calls.insert_many([_call("t1", _phone(), 1), _call("t2", _phone(), 1)])
    await db.profiles.insert_one({"_id": "p1", "tenant_id": "t1", "category": "customer_account"})
    order = _due(TenantScope(kind="tenant", tenant_id="t1"), tenant="t1")
    await participant.on_retention_due(order)
    await participant.on_retention_due(order)  # redelivered: nothing more, no second answer
    assert len(await _ids(db)) == 1
    assert await _ids(db, "profiles") == set()
    (answer,) = await _answers(db)
    assert answer.tenantid == "t1"
    assert sorted((c.collection, c.count) for c in answer.data.erased) == [
        ("calls", 1),
        ("profiles", 1),
    ]


async def test_r_ret_1_events_the_outbox_parked_are_erased_by_sweeps_and_with_their_tenant(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    """A parked event may carry a caller's data: no service lists `_outbox_parked` in its
    inventory, the participant adds it for all of them."""
    store = OutboxStore(db, ["calls"])
    for tenant in ("t1", "t2", "t3"):
        event = make_event(
            sample_payload(CallReceived, tenant_id=tenant), tenant_id=tenant, source="/test"
        )
        entry = PendingEntry("calls", uuid.uuid4().hex, _entry(event))
        await store.park(entry, "MessageSizeTooLargeError", "svc")
    long_ago = NOW - timedelta(days=61)
    await db[PARKED].update_one({"tenant_id": "t1"}, {"$set": {"retention_from": long_ago}})
    cutoff = NOW - timedelta(days=60)
    await participant.on_retention_due(
        _due(CategoryScope(kind="category", category=DataCategory.CALL_DATA, cutoff=cutoff))
    )
    await participant.on_retention_due(
        _due(TenantScope(kind="tenant", tenant_id="t2"), tenant="t2")
    )
    assert [d["tenant_id"] async for d in db[PARKED].find({})] == ["t3"]
    erased = [(c.collection, c.count) for a in await _answers(db) for c in a.data.erased]
    assert sorted(erased) == [(PARKED, 1), (PARKED, 1)]


async def test_r_dsr_15_access_returns_records_with_purpose_recipients_and_end(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    phone = _phone()
    await db.calls.insert_many(
        [_call("t1", phone, 10), _call("t2", phone, 20), _call("t1", _phone(), 1)]
    )
    everywhere = _dsr(DataSubjectRight.ACCESS, SubjectId(kind=PHONE, value=phone))
    one_tenant = _dsr(
        DataSubjectRight.ACCESS, SubjectId(kind=NAME, value="erika MUSTER"), tenant_id="t2"
    )
    await participant.on_dsr_requested(everywhere)
    await participant.on_dsr_requested(one_tenant)
    fragments = {e.data.request_id: e.data for e in await _answers(db)}
    both = fragments[everywhere.data.request_id]
    assert isinstance(both, DsrFragment)
    assert len(both.records) == 2
    record = both.records[0]
    assert (record.purpose, record.recipients, record.collection) == (
        "Call notes for the client",
        ("the client",),
        "calls",
    )
    assert record.data["caller"] == {
        "phone": phone,
        "name": "Erika Muster",
        "email": "erika@example.de",
    }
    assert "secret_key" not in record.data
    assert "_outbox" not in record.data
    assert record.retained_until is not None
    assert record.retained_until > NOW
    only = fragments[one_tenant.data.request_id]
    assert [r.data["tenant_id"] for r in only.records] == ["t2"]


async def test_r_dsr_20_a_long_answer_is_split_into_numbered_fragments(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    phone = _phone()
    await db.calls.insert_many(
        [_call("t1", phone, 1, concern="x" * 4000) for _ in range(300)]  # ~1.2 MB of records
    )
    await participant.on_dsr_requested(
        _dsr(DataSubjectRight.PORTABILITY, SubjectId(kind=PHONE, value=phone))
    )
    fragments = sorted((e.data for e in await _answers(db)), key=lambda f: f.part)
    assert len(fragments) >= 3
    assert {f.parts for f in fragments} == {len(fragments)}
    assert sum(len(f.records) for f in fragments) == 300
    assert fragments[0].counts[0].count == 300


async def test_r_dsr_16_rectification_applies_the_fields_held_here(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    phone = _phone()
    await db.calls.insert_many([_call("t1", phone, 1), _call("t1", _phone(), 1)])
    corrections = (
        Correction(field="name", value="Erika Muster-Korrekt"),
        Correction(field="company", value="ACME"),
    )
    await participant.on_dsr_requested(
        _dsr(
            DataSubjectRight.RECTIFICATION,
            SubjectId(kind=PHONE, value=phone),
            corrections=corrections,
        )
    )
    names = {d["caller"]["phone"]: d["caller"]["name"] async for d in db.calls.find({})}
    assert names[phone] == "Erika Muster-Korrekt"
    assert sorted(names.values()) == ["Erika Muster", "Erika Muster-Korrekt"]
    (answer,) = await _answers(db)
    assert answer.data.counts[0].count == 1
    assert "corrected: name" in answer.data.remarks
    assert "company" in answer.data.remarks
    assert "not corrected by this answer" not in answer.data.remarks


async def test_r_dsr_16_a_rectification_names_what_already_left_for_recipients(
    db: MongoDatabase,
) -> None:
    """Art. 19: what a service passed on (a CRM's records, mails sent) keeps the old values;
    the answer says so when it corrected something, so the operator can tell the recipient."""
    inventory = replace(INVENTORY, passed_on="records already in the client's CRM")
    participant = RetentionParticipant(inventory)
    participant.use(db)
    phone = _phone()
    await db.calls.insert_one(_call("t1", phone, 1))
    fix = (Correction(field="name", value="Erika Muster-Korrekt"),)
    for who in (phone, _phone()):  # the second finds nothing to correct
        await participant.on_dsr_requested(
            _dsr(DataSubjectRight.RECTIFICATION, SubjectId(kind=PHONE, value=who), corrections=fix)
        )
    corrected, untouched = sorted(await _answers(db), key=lambda e: len(e.data.counts))[::-1]
    assert corrected.data.remarks.endswith(
        "not corrected by this answer: records already in the client's CRM"
    )
    assert "not corrected" not in untouched.data.remarks


async def test_r_dsr_18_and_21_restriction_and_objection_are_recorded_until_lifted(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    phone = _phone()
    restricted = subject_ids(phone=phone, name="Someone Else")
    restriction = _dsr(DataSubjectRight.RESTRICTION, SubjectId(kind=PHONE, value=phone))
    await participant.on_dsr_requested(restriction)
    assert await participant.is_restricted("t1", restricted)
    assert await participant.is_restricted("t9", restricted)  # no tenant limit: everywhere
    assert not await participant.is_restricted("t1", subject_ids(phone=_phone()))
    lift = restriction.data.model_copy(update={"lift": True})
    await participant.on_dsr_requested(make_event(lift, tenant_id="*", source="/test"))
    assert not await participant.is_restricted("t1", restricted)

    email = f"{uuid.uuid4().hex[:8]}@Example.de"
    objection = _dsr(DataSubjectRight.OBJECTION, SubjectId(kind=EMAIL, value=email), tenant_id="t1")
    await participant.on_dsr_requested(objection)
    ids = subject_ids(email=email.lower())
    assert await participant.is_restricted("t1", ids, legal_basis=LEGITIMATE_INTEREST)
    assert not await participant.is_restricted("t1", ids, legal_basis="contract")
    assert not await participant.is_restricted("t2", ids, legal_basis=LEGITIMATE_INTEREST)
    answers = {(e.data.request_id, e.data.lifted): e.data.remarks for e in await _answers(db)}
    assert "Art. 18" in answers[(restriction.data.request_id, False)]
    assert "lifted" in answers[(restriction.data.request_id, True)]
    assert "Art. 21" in answers[(objection.data.request_id, False)]


async def test_r_dsr_18_a_restriction_follows_its_subject_through_a_rectification(
    db: MongoDatabase, participant: RetentionParticipant
) -> None:
    """Restricted while the accuracy is checked (Art. 18(1)(a)), then corrected: the
    corrected phone and name are restricted too, until the restriction is lifted."""
    phone, corrected = _phone(), _phone()
    old = SubjectId(kind=PHONE, value=phone)
    await participant.on_dsr_requested(_dsr(DataSubjectRight.RESTRICTION, old, tenant_id="t1"))
    fixes = (
        Correction(field="phone", value=corrected),
        Correction(field="name", value="Rita Richtig"),
    )
    await participant.on_dsr_requested(_dsr(DataSubjectRight.RECTIFICATION, old, corrections=fixes))
    now_known = [SubjectId(kind=PHONE, value=corrected)]
    assert await participant.is_restricted("t1", now_known)
    assert await participant.is_restricted("t1", [SubjectId(kind=NAME, value="rita  richtig")])
    assert (await participant.restricted_subjects("t1")).covers(now_known)
    assert not await participant.is_restricted("t2", now_known)  # the restriction's tenant only
    unrelated = _dsr(
        DataSubjectRight.RECTIFICATION,
        SubjectId(kind=PHONE, value=_phone()),
        corrections=(Correction(field="name", value="Someone Else"),),
    )
    await participant.on_dsr_requested(unrelated)
    assert not await participant.is_restricted("t1", [SubjectId(kind=NAME, value="Someone Else")])


async def test_r_rec_1_a_withdrawal_leaves_the_recordings_of_calls_started_after_it(
    db: MongoDatabase,
) -> None:
    """A caller who withdrew, then consented again on a later call: that call keeps its
    recording; the calls started until the withdrawal lose theirs."""
    participant = _recording_participant(db)
    phone = _phone()

    def recorded(minutes_ago: int) -> dict[str, Any]:
        url = f"https://rec.example/{uuid.uuid4().hex}.ogg"
        started = NOW - timedelta(minutes=minutes_ago)
        return {
            **_call("t1", phone, 0, recording={"consent": True, "url": url}),
            "retention_from": started,
        }

    before, after = recorded(120), recorded(30)
    await db.calls.insert_many([before, after])
    await participant.on_consent_changed(
        recording_consent("t1", phone, occurred_at=NOW - timedelta(minutes=60))
    )
    kept = {d["_id"]: d["recording"] async for d in db.calls.find({})}
    assert kept[before["_id"]] == {"consent": True}
    assert kept[after["_id"]] == after["recording"]


def test_subject_keys_ignore_case_and_spacing_of_names_and_emails() -> None:
    assert subject_key(SubjectId(kind=NAME, value=" Erika  MUSTER ")) == "name:erika muster"
    assert subject_key(SubjectId(kind=EMAIL, value="A@Example.DE")) == "email:a@example.de"


def test_options_add_the_participants_collections_and_topics() -> None:
    options = RetentionParticipant(INVENTORY).options(
        indexes={"calls": []}, outbox_collections=("calls",)
    )
    assert options["outbox_collections"] == ("calls", "retention_answers")
    assert {"calls", "retention_answers", "dsr_restrictions"} <= set(options["indexes"])
    assert {p.topic for p in options["publishes"]} == {"retention.completed", "dsr.fragment"}


def test_an_inventory_must_say_why_subject_erasure_keeps_a_collection() -> None:
    with pytest.raises(ValueError, match="say why"):
        PersonalData(collection="x", purpose="p", erase_by_subject=False)


def test_restricted_subjects_give_back_the_identifiers_they_compare() -> None:
    restricted = Restricted(
        frozenset(
            subject_key(i)
            for i in (
                SubjectId(kind=PHONE, value="+4915211014451"),
                SubjectId(kind=EMAIL, value="Xaver@Example.DE"),
                SubjectId(kind=NAME, value="  Erika   Mustermann "),
            )
        )
    )
    assert {(str(i.kind), i.value) for i in restricted.identifiers()} == {
        ("phone", "+4915211014451"),
        ("email", "xaver@example.de"),
        ("name", "erika mustermann"),
    }
    assert restricted.covers(restricted.identifiers())
    assert Restricted().identifiers() == []

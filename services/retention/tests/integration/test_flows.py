"""Retention and data-subject requests end to end: intake, notes and retention on real servers.

Intake and notes run in-process and answer over Kafka; the tests look into their databases
directly. Sweeps are limited to each test's tenants (`tenant_id`), so no other test module's
data is ever in scope; subjects are random numbers and names for the same reason.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app as create_intake
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app as create_notes
from switchboard_platform.retention_participant import (
    LEGITIMATE_INTEREST,
    RetentionParticipant,
)
from switchboard_platform.subjects import subject_ids
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header
from switchboard_retention.main import create_app as create_retention

from ..support import OPERATOR, retention_settings, until

AGENT = auth_header("agent", sub="agent-7")


@dataclass
class Suite:
    """The three running services, their clients and databases."""

    intake: httpx.AsyncClient
    notes_app: FastAPI
    intake_app: FastAPI
    retention: httpx.AsyncClient
    intake_db: Any
    notes_db: Any
    retention_db: Any

    def participants(self) -> list[RetentionParticipant]:
        return [
            self.intake_app.state.retention_participant,
            self.notes_app.state.retention_participant,
        ]


@pytest.fixture(scope="module")
async def suite(
    servers: ServerEndpoints, mongo: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Suite]:
    suffix = uuid.uuid4().hex[:8]
    intake_settings = service_settings(
        IntakeSettings, servers, f"intake_ret_{suffix}", kafka_consumer_group_prefix=f"i-{suffix}"
    )
    notes_settings = service_settings(
        NotesSettings, servers, f"notes_ret_{suffix}", kafka_consumer_group_prefix=f"n-{suffix}"
    )
    settings = retention_settings(servers, participants="intake,notes", answer_timeout_s=60)
    intake_app, notes_app = create_intake(intake_settings), create_notes(notes_settings)
    async with (
        running_app(intake_app) as intake,
        running_app(notes_app),
        running_app(create_retention(settings)) as retention,
    ):
        yield Suite(
            intake=intake,
            notes_app=notes_app,
            intake_app=intake_app,
            retention=retention,
            intake_db=mongo[intake_settings.mongodb_database],
            notes_db=mongo[notes_settings.mongodb_database],
            retention_db=mongo[settings.mongodb_database],
        )


def _phone() -> str:
    return f"+49151{uuid.uuid4().int % 10**8:08d}"


def _name() -> str:
    return f"Erika Test{uuid.uuid4().hex[:6]}"


async def _tenant(suite: Suite, **profile: Any) -> str:
    body = {"name": "Hausverwaltung Lindner", "industry": "other", **profile}
    reply = await suite.intake.post("/v1/tenants", json=body, headers=OPERATOR)
    assert reply.status_code == 201, reply.text
    tenant: str = reply.json()["id"]
    # retention refuses holds, sweeps and requests naming a tenant it has not learnt of
    await until(lambda: suite.retention_db.tenants.find_one({"_id": tenant}))
    return tenant


async def _call(
    suite: Suite, tenant: str, phone: str, name: str, days_ago: float, recording: str = ""
) -> str:
    started = datetime.now(UTC) - timedelta(days=days_ago)
    body: dict[str, Any] = {
        "tenant_id": tenant,
        "caller": {"name": name, "phone": phone, "email": f"{phone[1:]}@example.de"},
        "concern": "Bitte um Rückruf",
        "started_at": started.isoformat(),
    }
    if recording:
        body["recording"] = {"consent": True, "url": recording}
    reply = await suite.intake.post("/v1/calls", json=body, headers=AGENT)
    assert reply.status_code == 201, reply.text
    call_id: str = reply.json()["id"]
    await until(lambda: suite.notes_db.notes.find_one({"call_id": call_id}))
    return call_id


async def _calls(suite: Suite, tenant: str) -> set[str]:
    """The tenant's calls that hold a caller (an erased caller's call keeps only its ids)."""
    found = suite.intake_db.calls.find({"tenant_id": tenant})
    return {d["_id"] async for d in found if "caller" in d}


async def _notes(suite: Suite, tenant: str) -> set[str]:
    """The calls of the tenant's notes that hold a caller (an erased note is a tombstone)."""
    found = suite.notes_db.notes.find({"tenant_id": tenant})
    return {d["call_id"] async for d in found if "caller" in d}


async def _sweep(suite: Suite, **body: Any) -> dict[str, Any]:
    reply = await suite.retention.post("/v1/sweeps", json=body, headers=OPERATOR)
    assert reply.status_code == 202, reply.text
    url = f"/v1/sweeps/{reply.json()['id']}"

    async def completed() -> dict[str, Any] | None:
        sweep: dict[str, Any] = (await suite.retention.get(url, headers=OPERATOR)).json()
        return sweep if sweep["status"] == "completed" else None

    return await until(completed)


def _erased(sweep: dict[str, Any], service: str, collection: str) -> int:
    return sum(
        c["count"]
        for r in sweep["receipts"]
        if r["service"] == service
        for c in r["erased"]
        if c["collection"] == collection
    )


async def test_r_ret_2_a_recordings_reference_goes_after_30_days_and_its_call_stays(
    suite: Suite,
) -> None:
    tenant = await _tenant(suite)
    urls = {days: f"https://rec.example/{tenant}/{days}.ogg" for days in (31, 29)}
    calls = {
        days: await _call(suite, tenant, _phone(), _name(), days_ago=days, recording=url)
        for days, url in urls.items()
    }
    sweep = await _sweep(suite, tenant_id=tenant)
    assert await _calls(suite, tenant) == await _notes(suite, tenant) == set(calls.values())
    for db, collection, key in (
        (suite.intake_db, "calls", "_id"),
        (suite.notes_db, "notes", "call_id"),
    ):
        old = await db[collection].find_one({key: calls[31]})
        new = await db[collection].find_one({key: calls[29]})
        assert old["recording"] == {"consent": True}, collection  # the consent is call data
        assert new["recording"] == {"consent": True, "url": urls[29]}, collection
        assert urls[31] not in repr(old)
    counts = {
        (r["service"], c["collection"], c["category"]): c["count"]
        for r in sweep["receipts"]
        for c in r["erased"]
    }
    assert counts == {("intake", "calls", "recording"): 1, ("notes", "notes", "recording"): 1}


async def _dsr(suite: Suite, **body: Any) -> dict[str, Any]:
    reply = await suite.retention.post("/v1/dsr", json=body, headers=OPERATOR)
    assert reply.status_code == 201, reply.text
    url = f"/v1/dsr/{reply.json()['id']}"

    async def answered() -> dict[str, Any] | None:
        request: dict[str, Any] = (await suite.retention.get(url, headers=OPERATOR)).json()
        return request if request["status"] != "open" else None

    return await until(answered)


async def test_r_ret_1_and_r_ret_6_a_call_past_60_days_is_erased_everywhere_with_receipts(
    suite: Suite,
) -> None:
    tenant = await _tenant(suite)
    old = await _call(suite, tenant, _phone(), _name(), days_ago=61)
    new = await _call(suite, tenant, _phone(), _name(), days_ago=1)
    sweep = await _sweep(suite, tenant_id=tenant)
    assert await _calls(suite, tenant) == {new}
    assert await _notes(suite, tenant) == {new}
    assert {r["service"] for r in sweep["receipts"]} == {"intake", "notes"}
    assert len(sweep["receipts"]) == 2 * len(sweep["orders"])  # every order, every service
    assert _erased(sweep, "intake", "calls") == 1
    assert _erased(sweep, "notes", "notes") == 1
    assert old not in await _calls(suite, tenant)
    verdict = (await suite.retention.get("/v1/receipts/verify", headers=OPERATOR)).json()
    assert verdict["valid"]


async def test_r_ret_4_an_account_whose_clock_was_set_by_an_update_is_erased_after_5_years(
    suite: Suite,
) -> None:
    """Intake sets the clock with `$set` at termination: nx-27017 stores it as a string."""
    today = date.today()
    tenant = await _tenant(
        suite, contract_status="active", contract_signed_on=f"{today.year - 8}-01-02"
    )
    patch = {"contract_status": "terminated", "contract_terminated_on": f"{today.year - 6}-01-02"}
    reply = await suite.intake.patch(f"/v1/tenants/{tenant}", json=patch, headers=OPERATOR)
    assert reply.status_code == 200, reply.text
    await until(
        lambda: suite.retention_db.tenants.find_one({"_id": tenant, "status": "terminated"})
    )
    sweep = await _sweep(suite, tenant_id=tenant)
    assert await suite.intake_db.tenants.find_one({"_id": tenant}) is None
    assert _erased(sweep, "intake", "tenants") == 1
    assert [o["kind"] for o in sweep["orders"]].count("tenant") == 1  # offboarded everywhere


async def test_r_ret_3_a_prospect_is_offboarded_everywhere_90_days_after_onboarding(
    suite: Suite,
) -> None:
    tenant = await _tenant(suite)
    call = await _call(suite, tenant, _phone(), _name(), days_ago=0)
    await until(lambda: suite.retention_db.tenants.find_one({"_id": tenant}))
    as_of = datetime.now(UTC) + timedelta(days=91)  # allowed outside production
    sweep = await _sweep(suite, tenant_id=tenant, as_of=as_of.isoformat())
    tenant_order = next(o for o in sweep["orders"] if o["kind"] == "tenant")
    assert tenant_order["tenant_id"] == tenant
    assert await suite.intake_db.tenants.find_one({"_id": tenant}) is None
    assert await _calls(suite, tenant) == set()
    assert call not in await _notes(suite, tenant)


async def test_r_ret_5_a_legal_hold_keeps_exactly_what_it_covers_and_the_receipt_says_why(
    suite: Suite,
) -> None:
    tenant, held_phone = await _tenant(suite), _phone()
    held = await _call(suite, tenant, held_phone, _name(), days_ago=70)
    gone = await _call(suite, tenant, _phone(), _name(), days_ago=70)
    hold = {
        "tenant_id": tenant,
        "subject": {"kind": "phone", "value": held_phone},
        "reason": "R-RET-5: tax audit, § 147 AO",
        "until": (date.today() + timedelta(days=365)).isoformat(),
    }
    placed = await suite.retention.post("/v1/holds", json=hold, headers=OPERATOR)
    assert placed.status_code == 201
    hold_id = placed.json()["id"]
    sweep = await _sweep(suite, tenant_id=tenant)
    assert await _calls(suite, tenant) == {held}
    assert await _notes(suite, tenant) == {held}
    assert gone not in await _notes(suite, tenant)
    kept = [k | {"service": r["service"]} for r in sweep["receipts"] for k in r["retained"]]
    assert sorted((k["service"], k["collection"], k["count"]) for k in kept) == [
        ("intake", "calls", 1),
        ("notes", "notes", 1),
    ]
    assert all(k["hold_id"] == hold_id and "tax audit" in k["reason"] for k in kept)

    lifted = await suite.retention.delete(f"/v1/holds/{hold_id}", headers=OPERATOR)
    assert lifted.status_code == 204
    await _sweep(suite, tenant_id=tenant)
    assert await _calls(suite, tenant) == set()
    assert await _notes(suite, tenant) == set()


async def test_r_dsr_15_and_r_dsr_20_access_covers_every_tenant_unless_limited_to_one(
    suite: Suite,
) -> None:
    phone, name = _phone(), _name()
    first, second = await _tenant(suite), await _tenant(suite)
    mine = {await _call(suite, t, phone, name, days_ago=2) for t in (first, second)}
    await _call(suite, first, _phone(), _name(), days_ago=2)  # someone else
    everywhere = await _dsr(suite, right="access", identifiers=[{"kind": "phone", "value": phone}])
    assert everywhere["status"] == "completed"
    export = (
        await suite.retention.get(f"/v1/dsr/{everywhere['id']}/export", headers=OPERATOR)
    ).json()
    by_service = {s["service"]: s for s in export["services"]}
    notes = by_service["notes"]["records"]
    assert {r["data"]["call_id"] for r in notes} == mine
    assert {r["data"]["id"] for r in by_service["intake"]["records"]} == mine
    assert all(r["category"] == "call_data" and r["purpose"] and r["recipients"] for r in notes)
    assert all(r["retained_until"] for r in notes)

    one = await _dsr(
        suite,
        right="portability",
        identifiers=[{"kind": "name", "value": name.upper()}],
        tenant_id=second,
    )
    reply = await suite.retention.get(
        f"/v1/dsr/{one['id']}/export", headers={**OPERATOR, "Accept": "application/zip"}
    )
    assert reply.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    assert sorted(archive.namelist()) == ["intake.json", "notes.json", "request.json"]
    notes_file = json.loads(archive.read("notes.json"))
    assert [r["data"]["tenant_id"] for r in notes_file["records"]] == [second]


async def test_r_dsr_17_erasure_deletes_exactly_that_subjects_data(suite: Suite) -> None:
    tenant, phone = await _tenant(suite), _phone()
    for days in (1, 30):
        await _call(suite, tenant, phone, _name(), days_ago=days)
    other = await _call(suite, tenant, _phone(), _name(), days_ago=1)
    request = await _dsr(suite, right="erasure", identifiers=[{"kind": "phone", "value": phone}])
    assert request["status"] == "completed"
    assert await _calls(suite, tenant) == {other}
    assert await _notes(suite, tenant) == {other}
    stones = [
        d async for d in suite.notes_db.notes.find({"tenant_id": tenant}) if "caller" not in d
    ]
    assert len(stones) == 2  # tombstones: a redelivered call.received cannot write them again
    assert all(s.get("deleted_at") for s in stones)
    assert phone not in repr(stones)
    calls = [d async for d in suite.intake_db.calls.find({"tenant_id": tenant})]
    assert len(calls) == 3  # intake keeps the erased calls' retry keys, not their callers
    assert phone not in repr(calls)
    parts = {p["service"]: p for p in request["parts"]}
    assert parts["notes"]["counts"][0]["count"] == 2
    assert parts["intake"]["counts"][0]["count"] == 2
    receipts = (
        await suite.retention.get(
            "/v1/receipts", params={"request_id": request["id"]}, headers=OPERATOR
        )
    ).json()
    assert {r["service"] for r in receipts["items"]} == {"intake", "notes"}


async def test_r_dsr_16_rectification_corrects_the_name_where_it_is_held(suite: Suite) -> None:
    tenant, phone = await _tenant(suite), _phone()
    call = await _call(suite, tenant, phone, "Erika Falsch", days_ago=1)
    request = await _dsr(
        suite,
        right="rectification",
        identifiers=[{"kind": "phone", "value": phone}],
        corrections=[{"field": "name", "value": "Erika Richtig"}],
    )
    assert request["status"] == "completed"
    note = await suite.notes_db.notes.find_one({"call_id": call})
    stored = await suite.intake_db.calls.find_one({"_id": call})
    assert note["caller"]["name"] == stored["caller"]["name"] == "Erika Richtig"


async def test_r_dsr_18_and_r_dsr_21_restriction_and_objection_are_recorded_and_queryable(
    suite: Suite,
) -> None:
    tenant, phone = await _tenant(suite), _phone()
    await _call(suite, tenant, phone, _name(), days_ago=1)
    who = subject_ids(phone=phone)
    restriction = await _dsr(
        suite, right="restriction", identifiers=[{"kind": "phone", "value": phone}]
    )
    assert restriction["status"] == "completed"
    assert {p["service"] for p in restriction["parts"]} == {"intake", "notes"}
    for participant in suite.participants():
        assert await participant.is_restricted(tenant, who)
    lift = await suite.retention.post(f"/v1/dsr/{restriction['id']}/lift", headers=OPERATOR)
    assert lift.status_code == 200
    assert lift.json()["lifted_at"]

    async def lifted() -> bool:
        checks = [await p.is_restricted(tenant, who) for p in suite.participants()]
        return not any(checks)

    await until(lifted)

    objection = await _dsr(
        suite,
        right="objection",
        identifiers=[{"kind": "phone", "value": phone}],
        tenant_id=tenant,
    )
    assert all("Art. 21" in p["remarks"] for p in objection["parts"])
    for participant in suite.participants():
        assert await participant.is_restricted(tenant, who, legal_basis=LEGITIMATE_INTEREST)
        assert not await participant.is_restricted(tenant, who, legal_basis="contract")


async def test_r_dsr_17_erasure_also_erases_the_answers_kept_of_the_subjects_access_request(
    suite: Suite,
) -> None:
    """An access answer kept for its export holds the services' full records about the
    subject: their erasure reaches it too, and the erasure's answer says so."""
    tenant, phone = await _tenant(suite), _phone()
    call = await _call(suite, tenant, phone, _name(), days_ago=1)
    someone_else = _phone()
    await _call(suite, tenant, someone_else, _name(), days_ago=1)
    access = await _dsr(suite, right="access", identifiers=[{"kind": "phone", "value": phone}])
    other = await _dsr(
        suite, right="access", identifiers=[{"kind": "phone", "value": someone_else}]
    )

    async def exported(request: dict[str, Any]) -> dict[str, list[Any]]:
        url = f"/v1/dsr/{request['id']}/export"
        export = (await suite.retention.get(url, headers=OPERATOR)).json()
        return {s["service"]: s["records"] for s in export["services"]}

    assert {r["data"]["call_id"] for r in (await exported(access))["notes"]} == {call}
    kept = await suite.retention_db.dsr_fragments.count_documents({"request_id": access["id"]})
    assert kept >= 2  # intake's and notes' answers at least

    erasure = await _dsr(suite, right="erasure", identifiers=[{"kind": "phone", "value": phone}])
    parts = {p["service"]: p for p in erasure["parts"]}
    assert parts["retention"]["counts"] == [
        {"category": "call_data", "collection": "dsr_fragments", "count": kept}
    ]
    assert await exported(access) == {}
    assert (await exported(other))["notes"]  # another subject's answer stays

"""The notes service over the real broker and database: call.received in, notes out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaProducer

from switchboard_contracts import encode, make_event
from switchboard_contracts.calls import CallReceived, RecordingRef
from switchboard_contracts.common import Caller, SubjectId, SubjectKind
from switchboard_contracts.dsr import DataSubjectRight, DsrRequested
from switchboard_contracts.samples import sample_payload
from switchboard_notes.config import NotesSettings
from switchboard_platform.mongo import create_mongo_client
from switchboard_platform.testing.consents import recording_consent
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import collect_events


def _call(tenant: str, *, minutes_ago: int = 5, concern: str = "Bitte um Rückruf") -> CallReceived:
    now = datetime.now(UTC).replace(microsecond=0)  # stored with millisecond precision
    started = now - timedelta(minutes=minutes_ago)
    return CallReceived(
        call_id=uuid.uuid4().hex,
        tenant_id=tenant,
        agent_id="agent-7",
        caller=Caller(name="Erika Mustermann", phone="+4915211014450", company="ACME"),
        concern=concern,
        contact_person="Dr. Weber",
        started_at=started,
        duration_seconds=95,
        received_at=started + timedelta(seconds=100),
    )


async def _publish(servers: ServerEndpoints, *calls: CallReceived, repeat: int = 1) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap_servers, acks="all")
    await producer.start()
    ids = []
    try:
        for call in calls:
            event = make_event(call, tenant_id=call.tenant_id, source="/test")
            ids.append(event.id)
            record = encode(event)
            headers = [(k, v.encode()) for k, v in record.headers.items()]
            for _ in range(repeat):
                await producer.send_and_wait(
                    record.topic, record.value, key=record.key, headers=headers
                )
    finally:
        await producer.stop()
    return ids


async def _until_kept(settings: NotesSettings, collection: str, tenant: str) -> None:
    """Wait until notes' `collection` holds a document of `tenant` (what an event left)."""
    client = create_mongo_client(settings.mongodb_url, app_name="notes-test")
    try:
        kept = client[settings.mongodb_database][collection]
        deadline = asyncio.get_running_loop().time() + 20
        while not await kept.count_documents({"tenant_id": tenant}):
            assert asyncio.get_running_loop().time() < deadline, f"nothing kept in {collection}"
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def _wait_for_notes(
    client: httpx.AsyncClient, tenant: str, count: int, timeout_s: float = 20.0
) -> list[dict[str, object]]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    headers = auth_header("client", tenant=tenant)
    while True:
        items: list[dict[str, object]] = (
            await client.get("/v1/notes", headers=headers, params={"limit": 200})
        ).json()["items"]
        if len(items) >= count or asyncio.get_running_loop().time() > deadline:
            return items
        await asyncio.sleep(0.1)


async def test_r_call_1_received_call_becomes_a_note_with_all_call_fields(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    call = _call(tenant)
    await _publish(servers, call)
    [note] = await _wait_for_notes(notes_client, tenant, 1)
    assert note["call_id"] == call.call_id
    assert note["caller"] == {
        "name": "Erika Mustermann",
        "phone": "+4915211014450",
        "email": None,
        "company": "ACME",
    }
    assert note["concern"] == "Bitte um Rückruf"
    assert note["contact_person"] == "Dr. Weber"
    assert note["duration_seconds"] == 95
    assert datetime.fromisoformat(str(note["started_at"])) == call.started_at


async def test_redelivered_call_received_creates_exactly_one_note_and_one_note_created(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    call = _call(tenant)
    await _publish(servers, call, repeat=3)
    later = _call(tenant, minutes_ago=1)
    await _publish(servers, later)
    notes = await _wait_for_notes(notes_client, tenant, 2)
    assert sorted(str(n["call_id"]) for n in notes) == sorted([call.call_id, later.call_id])
    created = await collect_events(
        servers.kafka_bootstrap_servers, "note.created", tenant=tenant, expect=2, settle_s=1.0
    )
    assert sorted(e.data.call_id for e in created) == sorted([call.call_id, later.call_id])  # type: ignore[attr-defined]


async def test_r_note_2_deleted_note_is_gone_and_note_deleted_is_published(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    call = _call(tenant)
    await _publish(servers, call)
    [note] = await _wait_for_notes(notes_client, tenant, 1)
    headers = auth_header("client", tenant=tenant)
    response = await notes_client.delete(f"/v1/notes/{note['id']}", headers=headers)
    assert response.status_code == 204
    assert (await notes_client.get(f"/v1/notes/{note['id']}", headers=headers)).status_code == 404
    assert (await notes_client.get("/v1/notes", headers=headers)).json()["items"] == []
    deleted = await collect_events(
        servers.kafka_bootstrap_servers, "note.deleted", tenant=tenant, expect=1
    )
    assert [e.data.note_id for e in deleted] == [note["id"]]  # type: ignore[attr-defined]
    # a redelivered call must not resurrect the deleted note
    await _publish(servers, call)
    await asyncio.sleep(1.0)
    assert (await notes_client.get("/v1/notes", headers=headers)).json()["items"] == []


async def test_r_note_3_rating_is_published_and_counts_for_the_agent(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    call = _call(tenant)
    await _publish(servers, call)
    [note] = await _wait_for_notes(notes_client, tenant, 1)
    headers = auth_header("client", tenant=tenant)
    response = await notes_client.post(
        f"/v1/notes/{note['id']}/rating",
        headers=headers,
        json={"score": 4, "comment": "freundlich"},
    )
    assert response.status_code == 201
    rated = await collect_events(
        servers.kafka_bootstrap_servers, "note.rated", tenant=tenant, expect=1
    )
    assert [(e.data.score, e.data.agent_id) for e in rated] == [(4, "agent-7")]  # type: ignore[attr-defined]
    stats = await notes_client.get(
        "/v1/agents/ratings", params={"agent_id": "agent-7"}, headers=auth_header("operator")
    )
    assert stats.status_code == 200
    [agent] = stats.json()
    assert agent["count"] >= 1
    assert any(c["comment"] == "freundlich" for c in agent["recent_comments"])


async def test_notes_are_listed_newest_first_with_cursor_and_filters(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    calls = [_call(tenant, minutes_ago=m, concern=f"Anliegen {m}") for m in (30, 20, 10)]
    special = _call(tenant, minutes_ago=40, concern="Heizung defekt")
    await _publish(servers, *calls, special)
    await _wait_for_notes(notes_client, tenant, 4)
    headers = auth_header("client", tenant=tenant)
    first = (await notes_client.get("/v1/notes", headers=headers, params={"limit": 2})).json()
    assert [n["concern"] for n in first["items"]] == ["Anliegen 10", "Anliegen 20"]
    second = (
        await notes_client.get(
            "/v1/notes", headers=headers, params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [n["concern"] for n in second["items"]] == ["Anliegen 30", "Heizung defekt"]
    found = (await notes_client.get("/v1/notes", headers=headers, params={"q": "heizung"})).json()
    assert [n["call_id"] for n in found["items"]] == [special.call_id]
    window = {
        "from": (datetime.now(UTC) - timedelta(minutes=25)).isoformat(),
        "to": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    ranged = (await notes_client.get("/v1/notes", headers=headers, params=window)).json()
    assert [n["concern"] for n in ranged["items"]] == ["Anliegen 10", "Anliegen 20"]
    bad = await notes_client.get("/v1/notes", headers=headers, params={"cursor": "nonsense!"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_deleting_a_rated_note_drops_its_comment_but_keeps_the_score(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    call = _call(tenant).model_copy(update={"agent_id": f"agent-{tenant}"})
    await _publish(servers, call)
    [note] = await _wait_for_notes(notes_client, tenant, 1)
    headers = auth_header("client", tenant=tenant)
    rating = {"score": 2, "comment": "Name falsch geschrieben"}
    assert (
        await notes_client.post(f"/v1/notes/{note['id']}/rating", headers=headers, json=rating)
    ).status_code == 201
    assert (
        await notes_client.delete(f"/v1/notes/{note['id']}", headers=headers)
    ).status_code == 204
    stats = await notes_client.get(
        "/v1/agents/ratings",
        params={"agent_id": f"agent-{tenant}"},
        headers=auth_header("operator"),
    )
    assert stats.status_code == 200
    assert stats.json() == [
        {"agent_id": f"agent-{tenant}", "count": 1, "average": 2.0, "recent_comments": []}
    ]


async def test_r_rec_1_a_withdrawal_that_arrives_before_its_call_keeps_the_recording_out(
    notes_client: httpx.AsyncClient, notes_settings: NotesSettings, servers: ServerEndpoints
) -> None:
    """`consent.changed` and `call.received` are separate topics: a caller's withdrawal can
    reach notes before a call it covers. That note, and its `note.created`, keep no
    recording; a call started after the withdrawal keeps its own."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    phone = "+4915211014450"
    now = datetime.now(UTC).replace(microsecond=0)
    withdrawal = recording_consent(tenant, phone, occurred_at=now - timedelta(minutes=2))
    await produce(servers.kafka_bootstrap_servers, [encode(withdrawal)])
    await _until_kept(notes_settings, "consent_withdrawals", tenant)

    def recorded(minutes_ago: int) -> CallReceived:
        url = f"https://rec.example/{uuid.uuid4().hex}.ogg"
        return _call(tenant, minutes_ago=minutes_ago).model_copy(
            update={"recording": RecordingRef(consent=True, url=url)}
        )

    before, after = recorded(5), recorded(1)
    await _publish(servers, before, after)
    notes = {n["call_id"]: n for n in await _wait_for_notes(notes_client, tenant, 2)}
    assert notes[before.call_id]["recording"] == {"consent": True, "url": None}
    assert notes[after.call_id]["recording"] == after.recording.model_dump()  # type: ignore[union-attr]
    created = await collect_events(
        servers.kafka_bootstrap_servers, "note.created", tenant=tenant, expect=2
    )
    urls = {e.data.call_id: e.data.recording.url for e in created}  # type: ignore[attr-defined]
    assert urls == {before.call_id: None, after.call_id: after.recording.url}  # type: ignore[union-attr]


async def test_r_dsr_18_a_search_neither_shows_nor_hints_at_a_restricted_callers_notes(
    notes_client: httpx.AsyncClient, notes_settings: NotesSettings, servers: ServerEndpoints
) -> None:
    """The database leaves a restricted caller's notes out of a search: its pages are full,
    and no cursor points at one of them (a cursor is signed, not encrypted)."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    restricted_phone, other_phone = "+4915211014451", "+4915211014452"

    def call(phone: str, minutes_ago: int) -> CallReceived:
        caller = Caller(name="Erika Mustermann", phone=phone, company="ACME")
        return _call(tenant, minutes_ago=minutes_ago).model_copy(update={"caller": caller})

    calls = [call(restricted_phone, m) for m in range(1, 13)]
    calls += [call(other_phone, 20), call(other_phone, 21)]
    await _publish(servers, *calls)
    assert len(await _wait_for_notes(notes_client, tenant, len(calls))) == len(calls)
    request = sample_payload(DsrRequested).model_copy(
        update={
            "request_id": uuid.uuid4().hex,
            "right": DataSubjectRight.RESTRICTION,
            "identifiers": (SubjectId(kind=SubjectKind.PHONE, value=restricted_phone),),
            "tenant_id": tenant,
            "lift": False,
        }
    )
    event = make_event(request, tenant_id=tenant, source="/switchboard/retention")
    await produce(servers.kafka_bootstrap_servers, [encode(event)])
    await _until_kept(notes_settings, "dsr_restrictions", tenant)

    headers = auth_header("client", tenant=tenant)
    found = await notes_client.get("/v1/notes", headers=headers, params={"q": "Erika", "limit": 2})
    page = found.json()
    assert [n["caller"]["phone"] for n in page["items"]] == [other_phone, other_phone]
    assert page["next_cursor"] is not None
    following = await notes_client.get(
        "/v1/notes",
        headers=headers,
        params={"q": "Erika", "limit": 2, "cursor": page["next_cursor"]},
    )
    assert following.json() == {"items": [], "next_cursor": None}
    listed = (await notes_client.get("/v1/notes", headers=headers, params={"limit": 200})).json()
    assert sum(1 for n in listed["items"] if n["restricted"]) == 12

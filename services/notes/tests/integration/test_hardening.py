"""Issue 8 against notes: forged and foreign cursors, equal timestamps across tenants, dates at
the calendar's edge, NFC search, and a rating that cannot outlive or land on a deleted note.

R-SEC-2: a client sees its own tenant's notes only, whatever cursor it sends.
"""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from switchboard_contracts.calls import CallReceived
from switchboard_contracts.common import Caller
from switchboard_notes.config import NotesSettings
from switchboard_platform.mongo import create_mongo_client
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header

from .test_call_to_note import _publish, _wait_for_notes

SAME_TIME = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _call_at(tenant: str, started: datetime, name: str = "Erika Mustermann") -> CallReceived:
    return CallReceived(
        call_id=uuid.uuid4().hex,
        tenant_id=tenant,
        agent_id="agent-7",
        caller=Caller(name=name, phone="+4915211014450"),
        concern="Rückruf erbeten",
        started_at=started,
        received_at=started,
    )


def _forged(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


@pytest.fixture(scope="module")
async def two_tenants(notes_client: httpx.AsyncClient, servers: ServerEndpoints) -> tuple[str, str]:
    """Tenants A and B with three notes each, all six calls started at the same second."""
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    calls = [_call_at(t, SAME_TIME) for t in (a, b, a, b, a, b)]
    await _publish(servers, *calls)
    assert len(await _wait_for_notes(notes_client, a, 3)) == 3
    assert len(await _wait_for_notes(notes_client, b, 3)) == 3
    return a, b


async def test_r_sec_2_paging_one_by_one_across_equal_timestamps_stays_in_the_tenant(
    notes_client: httpx.AsyncClient, two_tenants: tuple[str, str]
) -> None:
    a, _ = two_tenants
    headers = auth_header("client", tenant=a)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await notes_client.get("/v1/notes", headers=headers, params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3
    assert {n["tenant_id"] for n in seen} == {a}
    assert len({n["id"] for n in seen}) == 3


@pytest.mark.parametrize(
    "position",
    [[SAME_TIME.isoformat(), "\uffff"], ["2099-01-01T00:00:00+00:00", "z"], [1, 2], "x"],
)
async def test_r_sec_2_a_cursor_built_by_hand_is_refused(
    notes_client: httpx.AsyncClient, two_tenants: tuple[str, str], position: Any
) -> None:
    a, b = two_tenants
    reply = await notes_client.get(
        "/v1/notes", headers=auth_header("client", tenant=a), params={"cursor": _forged(position)}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert b not in reply.text


async def test_r_sec_2_a_cursor_issued_to_another_tenant_or_edited_is_refused(
    notes_client: httpx.AsyncClient, two_tenants: tuple[str, str]
) -> None:
    a, b = two_tenants
    page = (
        await notes_client.get(
            "/v1/notes", headers=auth_header("client", tenant=b), params={"limit": 1}
        )
    ).json()
    cursor = page["next_cursor"]
    assert cursor
    foreign = await notes_client.get(
        "/v1/notes", headers=auth_header("client", tenant=a), params={"cursor": cursor}
    )
    assert foreign.status_code == 422
    _body, mac = cursor.split(".")
    edited = _forged([SAME_TIME.isoformat(), "\uffff"]).rstrip("=") + "." + mac
    tampered = await notes_client.get(
        "/v1/notes", headers=auth_header("client", tenant=b), params={"cursor": edited}
    )
    assert tampered.status_code == 422


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59"])
async def test_a_filter_date_at_the_edge_of_the_calendar_is_a_422_naming_it(
    notes_client: httpx.AsyncClient, moment: str
) -> None:
    headers = auth_header("client", tenant="t-any")
    for name in ("from", "to"):
        reply = await notes_client.get("/v1/notes", headers=headers, params={name: moment})
        assert reply.status_code == 422
        assert reply.json()["detail"][0]["loc"] == ["query", name]


async def test_a_search_for_a_composed_name_finds_a_decomposed_one_and_back(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    tenant = f"n-{uuid.uuid4().hex[:8]}"
    decomposed = unicodedata.normalize("NFD", "Jürgen Öztürk")
    await _publish(servers, _call_at(tenant, SAME_TIME, name=decomposed))
    await _wait_for_notes(notes_client, tenant, 1)
    headers = auth_header("client", tenant=tenant)
    for query in ("Jürgen", unicodedata.normalize("NFD", "Öztürk")):
        found = (await notes_client.get("/v1/notes", headers=headers, params={"q": query})).json()
        assert len(found["items"]) == 1, query


async def test_r_note_2_deleting_a_note_forgets_its_rating_comment_in_the_same_write(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints, notes_settings: NotesSettings
) -> None:
    tenant = f"r-{uuid.uuid4().hex[:8]}"
    await _publish(servers, _call_at(tenant, SAME_TIME))
    [note] = await _wait_for_notes(notes_client, tenant, 1)
    headers = auth_header("client", tenant=tenant)
    rated = await notes_client.post(
        f"/v1/notes/{note['id']}/rating",
        json={"score": 4, "comment": "Frau Kranz war toll"},
        headers=headers,
    )
    assert rated.status_code == 201
    assert datetime.fromisoformat(rated.json()["rated_at"]).tzinfo is not None
    assert (
        await notes_client.delete(f"/v1/notes/{note['id']}", headers=headers)
    ).status_code == 204
    client = create_mongo_client(notes_settings.mongodb_url, app_name="check")
    try:
        stored = await client[notes_settings.mongodb_database]["notes"].find_one(
            {"_id": note["id"]}
        )
    finally:
        await client.close()
    assert stored is not None
    assert stored["rating"]["score"] == 4
    assert "comment" not in stored["rating"]
    assert "caller" not in stored
    assert "concern" not in stored
    late = await notes_client.post(
        f"/v1/notes/{note['id']}/rating", json={"score": 1}, headers=headers
    )
    assert late.status_code == 404  # a rating cannot land on a deleted note


async def test_paging_returns_calls_of_one_second_each_once_newest_first(
    notes_client: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    """nx-27017 compares dates to the second: notes are paged by epoch milliseconds."""
    from datetime import timedelta

    tenant = f"ms-{uuid.uuid4().hex[:8]}"
    moments = [SAME_TIME + timedelta(milliseconds=ms) for ms in (100, 300, 500, 700, 900)]
    await _publish(servers, *[_call_at(tenant, m) for m in moments])
    await _wait_for_notes(notes_client, tenant, 5)
    headers = auth_header("client", tenant=tenant)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await notes_client.get("/v1/notes", headers=headers, params=params)).json()
        seen.extend(n["started_at"] for n in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [datetime.fromisoformat(s) for s in seen] == sorted(moments, reverse=True)


async def test_a_search_term_or_comment_too_long_is_a_422_that_speaks_of_characters(
    notes_client: httpx.AsyncClient,
) -> None:
    headers = auth_header("client", tenant="t-any")
    reply = await notes_client.get("/v1/notes", headers=headers, params={"q": "x" * 201})
    [error] = reply.json()["detail"]
    assert (reply.status_code, error["loc"]) == (422, ["query", "q"])
    assert "at most 200 characters" in error["msg"]
    note = str(uuid.uuid4())
    reply = await notes_client.post(
        f"/v1/notes/{note}/rating", headers=headers, json={"score": 4, "comment": "x" * 2001}
    )
    [error] = reply.json()["detail"]
    assert (reply.status_code, error["loc"]) == (422, ["body", "comment"])
    assert "at most 2000 characters" in error["msg"]

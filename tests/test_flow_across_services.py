"""The first flow across intake and notes, and tenant isolation on every endpoint.

Intake and notes run in this process against the session's real broker and database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app as create_intake
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app as create_notes
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header

CALLER_NAME = "Walburga Feldkamp"
CONCERN = "Termin für die Steuererklärung verschieben"


@dataclass
class World:
    """Two tenants, A with one captured call whose note exists, B with none."""

    intake: httpx.AsyncClient
    notes: httpx.AsyncClient
    tenant_a: str
    tenant_b: str
    call_id: str
    note_id: str
    intake_db: Any


async def _onboard(intake: httpx.AsyncClient, name: str, number: str) -> str:
    response = await intake.post(
        "/v1/tenants",
        headers=auth_header("operator"),
        json={
            "name": name,
            "industry": "tax",
            "contract_status": "active",
            "forwarding_numbers": [number],
            "recipients": [{"channel": "email", "address": "buero@example.de"}],
        },
    )
    assert response.status_code == 201, response.text
    tenant_id: str = response.json()["id"]
    return tenant_id


async def _note_of(
    notes: httpx.AsyncClient, tenant: str, timeout_s: float = 20
) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        reply = await notes.get("/v1/notes", headers=auth_header("client", tenant=tenant))
        items: list[dict[str, object]] = reply.json()["items"]
        if items:
            return items[0]
        assert asyncio.get_running_loop().time() < deadline, "no note arrived"
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def world(servers: ServerEndpoints) -> AsyncIterator[World]:
    suffix = uuid.uuid4().hex[:8]
    intake_settings = service_settings(IntakeSettings, servers, f"intake_{suffix}")
    intake_app = create_intake(intake_settings)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_url)
    notes_app = create_notes(service_settings(NotesSettings, servers, f"notes_{suffix}"))
    async with running_app(intake_app) as intake, running_app(notes_app) as notes:
        digits = str(uuid.uuid4().int)[:7]
        tenant_a = await _onboard(intake, "Steuerkanzlei A", f"+49241{digits}")
        tenant_b = await _onboard(intake, "Praxis B", f"+49221{digits}")
        started = datetime.now(UTC) - timedelta(minutes=3)
        call = await intake.post(
            "/v1/calls",
            headers=auth_header("agent", sub="agent-anna"),
            json={
                "dialed_number": f"0241 {digits}",  # German notation, attributed by number
                "caller": {"name": CALLER_NAME, "phone": "0170 1234567", "company": "Feldkamp KG"},
                "concern": CONCERN,
                "contact_person": "Herr Dr. Brandt",
                "started_at": started.isoformat(),
                "duration_seconds": 140,
            },
        )
        assert call.status_code == 201, call.text
        assert call.json()["tenant_id"] == tenant_a
        note = await _note_of(notes, tenant_a)
        intake_db = mongo[intake_settings.mongodb_database]
        yield World(
            intake, notes, tenant_a, tenant_b, call.json()["id"], str(note["id"]), intake_db
        )
    await mongo.close()


async def test_r_call_2_call_by_dialed_number_reaches_the_client_as_a_note(world: World) -> None:
    """Operator onboards, agent captures by dialed number, client reads the note (R-CALL-1/2)."""
    reply = await world.notes.get(
        f"/v1/notes/{world.note_id}", headers=auth_header("client", tenant=world.tenant_a)
    )
    assert reply.status_code == 200
    note = reply.json()
    assert note["call_id"] == world.call_id
    assert note["tenant_id"] == world.tenant_a
    assert note["agent_id"] == "agent-anna"
    assert note["caller"]["name"] == CALLER_NAME
    assert note["caller"]["phone"] == "+491701234567"
    assert note["concern"] == CONCERN
    assert note["contact_person"] == "Herr Dr. Brandt"
    assert note["duration_seconds"] == 140


# Expected status per endpoint for each caller, in ROLES order. "client_a" is tenant A's
# client, "client_b" another tenant's; rows run in this order, client A's DELETE last.
ROLES = ("none", "agent", "client_b", "operator", "client_a")
MATRIX: dict[str, tuple[int, ...]] = {
    "intake POST /v1/tenants": (401, 403, 403, 201, 403),
    "intake GET /v1/tenants/A": (401, 403, 404, 200, 200),
    "intake PATCH /v1/tenants/A": (401, 403, 403, 200, 403),
    "intake POST /v1/calls": (401, 201, 403, 403, 403),
    "notes GET /v1/notes": (401, 403, 200, 403, 200),
    "notes GET /v1/notes/A": (401, 403, 404, 403, 200),
    "notes POST /v1/notes/A/rating": (401, 403, 404, 403, 201),
    "notes GET /v1/agents/ratings": (401, 403, 403, 200, 403),
    "notes DELETE /v1/notes/A": (401, 403, 404, 403, 204),
}
CASES = [
    (endpoint, who, code)
    for endpoint, row in MATRIX.items()
    for who, code in zip(ROLES, row, strict=True)
]


def _headers(who: str, world: World) -> dict[str, str]:
    if who == "none":
        return {}
    if who == "client_a":
        return auth_header("client", tenant=world.tenant_a)
    if who == "client_b":
        return auth_header("client", tenant=world.tenant_b)
    return auth_header(who, sub=f"{who}-1")


async def _request(endpoint: str, who: str, world: World) -> httpx.Response:
    service, method, path = endpoint.split(" ")
    client = world.intake if service == "intake" else world.notes
    path = path.replace("/tenants/A", f"/tenants/{world.tenant_a}")
    path = path.replace("/notes/A", f"/notes/{world.note_id}")
    bodies = {
        "POST /v1/tenants": {"name": "Neu GmbH", "industry": "other"},
        "PATCH /v1/tenants/A": {"notes": "Mittagspause 12-13 Uhr"},
        "POST /v1/calls": {
            "tenant_id": world.tenant_a,
            "caller": {"name": "Probe", "phone": "+4915211014450"},
            "concern": "Probe",
            "started_at": datetime.now(UTC).isoformat(),
        },
        "POST /v1/notes/A/rating": {"score": 5, "comment": "sehr gut"},
    }
    body = bodies.get(f"{method} {endpoint.split(' ')[2]}")
    return await client.request(method, path, json=body, headers=_headers(who, world))


@pytest.mark.parametrize(
    ("endpoint", "who", "expected"), CASES, ids=[f"{e}-{w}" for e, w, _ in CASES]
)
async def test_r_sec_2_every_endpoint_answers_each_role_and_tenant_as_it_should(
    world: World, endpoint: str, who: str, expected: int
) -> None:
    """Each client only its own data; another tenant's resource is a 404 (R-SEC-2)."""
    reply = await _request(endpoint, who, world)
    assert reply.status_code == expected, reply.text
    if who == "client_b":  # nothing of tenant A leaks to tenant B, in any answer
        for secret in (CALLER_NAME, CONCERN, world.tenant_a, world.call_id, "Steuerkanzlei A"):
            assert secret not in reply.text


async def test_note_is_gone_for_everyone_after_its_client_deleted_it(world: World) -> None:
    """After the matrix, client A's DELETE has run: the note is gone (R-NOTE-2), and the
    call record intake keeps (for its retry key and clock) holds nothing of the caller."""
    reply = await world.notes.get(
        f"/v1/notes/{world.note_id}", headers=auth_header("client", tenant=world.tenant_a)
    )
    assert reply.status_code == 404
    deadline = asyncio.get_running_loop().time() + 20
    while "caller" in (call := await world.intake_db.calls.find_one({"_id": world.call_id})):
        assert asyncio.get_running_loop().time() < deadline, "intake kept the caller"
        await asyncio.sleep(0.1)
    for held in (CALLER_NAME, CONCERN, "Herr Dr. Brandt", "0170"):
        assert held not in repr(call), held

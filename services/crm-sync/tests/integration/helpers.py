"""Events, waits and requests the crm-sync integration tests share."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from switchboard_contracts import Event, encode, make_event
from switchboard_contracts.common import Caller
from switchboard_contracts.notes import DeletionReason, NoteCreated, NoteDeleted
from switchboard_contracts.tenants import ContractStatus, Industry, TenantChanged
from switchboard_platform.testing.kafka import produce
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import records_of

SECRETS: list[str] = []
"""Every credential handed to crm-sync in this session: none may appear in any output."""


def token(prefix: str = "tok") -> str:
    """A fresh credential, remembered for the leak checks."""
    value = f"{prefix}-{secrets.token_hex(16)}"
    SECRETS.append(value)
    return value


def tenant() -> str:
    """A tenant of this test only."""
    return f"t-{uuid.uuid4().hex[:10]}"


def client(tenant_id: str) -> dict[str, str]:
    """Headers of a client of `tenant_id`."""
    return auth_header("client", tenant=tenant_id)


OPERATOR = auth_header("operator", sub="operator-1")


def note_created(
    tenant_id: str,
    *,
    phone: str = "+4915211014450",
    email: str | None = "erika@example.de",
    name: str = "Erika Mustermann",
    company: str | None = "ACME GmbH",
    concern: str = "Bitte um Rückruf wegen des Mietvertrags",
    contact_person: str | None = "Dr. Weber",
    duration_seconds: int | None = 95,
) -> Event[NoteCreated]:
    """A `note.created` of a call five minutes ago."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    payload = NoteCreated(
        note_id=str(uuid.uuid4()),
        call_id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        agent_id="agent-7",
        caller=Caller(name=name, phone=phone, email=email, company=company),
        concern=concern,
        contact_person=contact_person,
        started_at=started,
        duration_seconds=duration_seconds,
        forwarded_from="+492411234567",
        created_at=started + timedelta(minutes=2),
    )
    return make_event(payload, tenant_id=tenant_id, source="/test", subject=payload.note_id)


def note_deleted(created: Event[NoteCreated]) -> Event[NoteDeleted]:
    """The `note.deleted` of a created note (the client deleted it)."""
    data = created.data
    payload = NoteDeleted(
        note_id=data.note_id,
        call_id=data.call_id,
        tenant_id=data.tenant_id,
        deleted_at=datetime.now(UTC),
        deleted_by="client-user",
        reason=DeletionReason.CLIENT_REQUEST,
    )
    return make_event(payload, tenant_id=data.tenant_id, source="/test", subject=data.note_id)


def tenant_changed(
    tenant_id: str,
    *,
    secrecy_bound: bool = False,
    status: ContractStatus = ContractStatus.ACTIVE,
) -> Event[TenantChanged]:
    """A tenant's profile: secrecy-bound (law) or not (other)."""
    payload = TenantChanged(
        tenant_id=tenant_id,
        change="created",
        name="Kanzlei Meyer" if secrecy_bound else "Hausverwaltung Schmidt",
        industry=Industry.LAW if secrecy_bound else Industry.OTHER,
        secrecy_bound=secrecy_bound,
        contract_status=status,
    )
    return make_event(payload, tenant_id=tenant_id, source="/test")


async def publish(servers: ServerEndpoints, *events: Event[Any]) -> None:
    """Put events on their topics, as the other services would."""
    await produce(servers.kafka_bootstrap_servers, [encode(e) for e in events])


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout_s: float = 15.0,
    what: str = "condition",
) -> None:
    """Wait until `check()` holds; fail after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def put_connector(
    crm: httpx.AsyncClient, kind: str, tenant_id: str, **body: Any
) -> httpx.Response:
    """`PUT /v1/connectors/{kind}` as a client of the tenant; region EU unless given."""
    body.setdefault("region", "EU")
    return await crm.put(f"/v1/connectors/{kind}", json=body, headers=client(tenant_id))


async def transfers(crm: httpx.AsyncClient, tenant_id: str, **params: Any) -> list[dict[str, Any]]:
    """The tenant's transfer log (first 200)."""
    reply = await crm.get(
        "/v1/transfers", params={"limit": 200, **params}, headers=client(tenant_id)
    )
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def settled(crm: httpx.AsyncClient, tenant_id: str, count: int) -> list[dict[str, Any]]:
    """Wait until `count` transfers of the tenant are final; return the log."""
    final = {"synced", "deleted", "not_deleted", "failed", "refused", "cancelled"}
    found: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal found
        found = await transfers(crm, tenant_id)
        return sum(t["status"] in final for t in found) >= count

    await eventually(done, what=f"{count} final transfers")
    return found


async def raw_records(bootstrap: str, topics: tuple[str, ...], tenant_id: str) -> list[bytes]:
    """Every record (headers and value, raw) of `tenant_id` on `topics`, from the start."""
    return [
        b"".join(k.encode() + v for k, v in r.headers) + (r.value or b"")
        for r in await records_of(bootstrap, topics, tenant_id)
    ]

"""The notify API: consent registry, recipients, ledger pages; tenant isolation and bad input."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from switchboard_contracts import make_event
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.retention import RetentionDue, RetentionReason, SubjectScope
from switchboard_contracts.tenants import Channel, ContractStatus
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header
from switchboard_platform.testing.topics import collect_events

from ..support import (
    SmtpServer,
    address,
    eventually,
    new_tenant,
    note_created,
    publish,
    tenant_changed,
)

SECRET_LOOKING = "geheim-4711-do-not-echo"


async def _statuses(notify: httpx.AsyncClient, headers: dict[str, str], subject: str) -> list[str]:
    """The statuses of the subject's consent records, oldest first."""
    reply = await notify.get("/v1/consents", params={"subject": subject}, headers=headers)
    return [r["status"] for r in reply.json()]


def _consent(subject: str, status: str = "withdrawn", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "purpose": "notification",
        "channel": "email",
        "status": status,
        "method": "web_form",
        "text_version": "portal-consent-de-v2",
        **extra,
    }


@pytest.fixture(scope="module")
async def onboarded(
    notify: httpx.AsyncClient, servers: ServerEndpoints, smtp: SmtpServer
) -> dict[str, str]:
    """Two tenants, each with a mail recipient, an SMS recipient and two sent notes."""
    made: dict[str, str] = {}
    for key in ("a", "b"):
        tenant = new_tenant()
        made[key] = tenant
        await publish(
            servers.kafka_bootstrap_servers,
            tenant_changed(
                tenant,
                [
                    (Channel.EMAIL, address(tenant), "Frau Meyer"),
                    (Channel.SMS, "0151 2222 3333", None),
                ],
            ),
            note_created(tenant, note_id=f"note-{tenant}-1"),
            note_created(tenant, note_id=f"note-{tenant}-2"),
        )
    for tenant in made.values():

        def both_sent(t: str = tenant) -> bool:
            return len(smtp.sink.to(address(t))) == 2

        await eventually(both_sent)
    return made


async def test_r_con_3_recipients_carry_their_onboarding_consent(
    notify: httpx.AsyncClient, onboarded: dict[str, str], servers: ServerEndpoints
) -> None:
    tenant = onboarded["a"]
    reply = await notify.get("/v1/recipients", headers=auth_header("client", tenant=tenant))
    assert reply.status_code == 200
    by_channel = {r["channel"]: r for r in reply.json()}
    assert by_channel["email"]["address"] == address(tenant)
    assert by_channel["sms"]["address"] == "+4915122223333"  # German notation normalised
    for recipient in by_channel.values():
        consent = recipient["consent"]
        assert (consent["status"], consent["method"], consent["text_version"]) == (
            "granted",
            "written",
            "onboarding-contract-de-v1",
        )
    # recorded once, announced once, however often the tenant changes
    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, address(tenant), "Frau Meyer")]),
    )
    changed = await collect_events(
        servers.kafka_bootstrap_servers, "consent.changed", tenant=tenant, expect=2, settle_s=1.0
    )
    assert sorted(e.data.channel for e in changed) == ["email", "sms"]


async def test_r_con_3_consent_history_is_append_only_and_oldest_first(
    notify: httpx.AsyncClient, onboarded: dict[str, str], servers: ServerEndpoints
) -> None:
    tenant = onboarded["a"]
    client = auth_header("client", tenant=tenant, sub="anna")
    subject = address(tenant)
    withdrawn = await notify.post("/v1/consents", headers=client, json=_consent(subject))
    assert withdrawn.status_code == 201, withdrawn.text
    body = withdrawn.json()
    assert body["recorded_by"] == f"client:{tenant}/anna"
    assert body["subject_kind"] == "email"
    regranted = await notify.post(
        "/v1/consents", headers=client, json=_consent(subject.upper(), status="granted")
    )
    assert regranted.status_code == 201
    history = await notify.get("/v1/consents", params={"subject": subject}, headers=client)
    assert history.status_code == 200
    assert [(r["status"], r["method"]) for r in history.json()] == [
        ("granted", "written"),
        ("withdrawn", "web_form"),
        ("granted", "web_form"),
    ]
    announced = await collect_events(
        servers.kafka_bootstrap_servers, "consent.changed", tenant=tenant, expect=4
    )
    assert body["consent_id"] in {e.data.consent_id for e in announced}


async def test_r_con_3_an_operators_consent_for_a_tenant_never_learnt_of_is_422_until_announced(
    notify: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    """A consent recorded under a mistyped tenant id would be proof for no one (R-CON-3):
    refused, naming the field, and nothing recorded; once `tenant.changed` announced the
    tenant, the same write is taken."""
    tenant, operator = new_tenant(), auth_header("operator", sub="olga")
    subject = address(tenant)
    body = _consent(subject, tenant_id=tenant)

    async def history() -> list[str]:
        params = {"subject": subject, "tenant_id": tenant}
        reply = await notify.get("/v1/consents", params=params, headers=operator)
        assert reply.status_code == 200, reply.text
        return [r["status"] for r in reply.json()]

    refused = await notify.post("/v1/consents", headers=operator, json=body)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "tenant_id"]
    assert "no such tenant is known to this service" in error["msg"]
    assert await history() == []

    await publish(
        servers.kafka_bootstrap_servers,
        tenant_changed(tenant, [(Channel.EMAIL, subject, "Frau Meyer")]),
    )

    async def onboarded() -> bool:
        return await history() == ["granted"]

    await eventually(onboarded)
    accepted = await notify.post("/v1/consents", headers=operator, json=body)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["recorded_by"] == "operator:olga"
    assert await history() == ["granted", "withdrawn"]


async def test_a_clients_consent_is_taken_before_its_tenant_is_announced(
    notify: httpx.AsyncClient,
) -> None:
    """A client's tenant comes from its signed token, not from input: it is not checked, as
    its `tenant.changed` may still be on the way right after onboarding."""
    tenant = new_tenant()
    client = auth_header("client", tenant=tenant)
    posted = await notify.post("/v1/consents", headers=client, json=_consent(address(tenant)))
    assert posted.status_code == 201, posted.text


async def test_r_con_3_recording_consent_from_intake_is_kept_in_the_registry(
    notify: httpx.AsyncClient, onboarded: dict[str, str], servers: ServerEndpoints
) -> None:
    tenant = onboarded["b"]
    payload = ConsentChanged(
        consent_id=f"recording-{uuid.uuid4().hex}",
        tenant_id=tenant,
        subject=SubjectId(kind=SubjectKind.PHONE, value="+4915211014450"),
        purpose=ConsentPurpose.RECORDING,
        channel=ConsentChannel.NONE,
        status=ConsentStatus.GRANTED,
        occurred_at=dt.datetime.now(dt.UTC),
        method=ConsentMethod.VERBAL_DURING_CALL,
        text_version="recording-notice-de-2024-05",
        recorded_by="agent-7",
        call_id="call-1",
    )
    event = make_event(payload, tenant_id=tenant, source="/switchboard/intake")
    await publish(servers.kafka_bootstrap_servers, event, event)
    operator = auth_header("operator")

    async def history() -> list[dict[str, Any]]:
        reply = await notify.get(
            "/v1/consents",
            params={"subject": "0152 11014450", "tenant_id": tenant},
            headers=operator,
        )
        assert reply.status_code == 200
        records: list[dict[str, Any]] = reply.json()
        return records

    [record] = await eventually(history)
    assert (record["purpose"], record["call_id"], record["recorded_by"]) == (
        "recording",
        "call-1",
        "agent-7",
    )


async def test_r_api_2_deliveries_page_with_signed_cursors(
    notify: httpx.AsyncClient, onboarded: dict[str, str]
) -> None:
    tenant = onboarded["a"]
    client = auth_header("client", tenant=tenant)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await notify.get("/v1/deliveries", params=params, headers=client)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4  # two notes to two recipients
    one_note = await notify.get(
        "/v1/deliveries", params={"note_id": f"note-{tenant}-1"}, headers=client
    )
    items = one_note.json()["items"]
    assert {i["channel"] for i in items} == {"email", "sms"}
    for item in items:
        assert item["status"] == "sent"
        assert item["legal_basis"] == "consent"
        assert not {"concern", "caller", "body", "text"} & set(item)


async def test_r_api_2_another_tenants_data_answers_404_and_its_cursor_422(
    notify: httpx.AsyncClient, onboarded: dict[str, str]
) -> None:
    a, b = onboarded["a"], onboarded["b"]
    client_a = auth_header("client", tenant=a)
    for path, params in (
        ("/v1/deliveries", {"tenant_id": b}),
        ("/v1/deliveries", {"note_id": f"note-{b}-1"}),
        ("/v1/consents", {"tenant_id": b, "subject": address(b)}),
    ):
        reply = await notify.get(path, params=params, headers=client_a)
        assert reply.status_code == 404, (path, params)
    posted = await notify.post(
        "/v1/consents", headers=client_a, json=_consent(address(b), tenant_id=b)
    )
    assert posted.status_code == 404
    # a's view of b's subject is a's own (empty) history, never b's records
    own = await notify.get("/v1/consents", params={"subject": address(b)}, headers=client_a)
    assert own.json() == []
    b_page = await notify.get(
        "/v1/deliveries", params={"limit": 1}, headers=auth_header("client", tenant=b)
    )
    b_cursor = b_page.json()["next_cursor"]
    for forged in (b_cursor, "eyJ4IjoxfQ.AAAA", "nonsense"):
        reply = await notify.get("/v1/deliveries", params={"cursor": forged}, headers=client_a)
        assert reply.status_code == 422
        assert reply.json()["detail"][0]["loc"] == ["query", "cursor"]
    # operators name the tenant; without one they get a 422 naming it
    operator = auth_header("operator")
    assert (await notify.get("/v1/deliveries", headers=operator)).json()["detail"][0]["loc"] == [
        "query",
        "tenant_id",
    ]
    assert (
        await notify.get("/v1/deliveries", params={"tenant_id": b}, headers=operator)
    ).status_code == 200
    agent = auth_header("agent")
    assert (await notify.get("/v1/recipients", headers=agent)).status_code == 403
    assert (await notify.get("/v1/recipients")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_consent(SECRET_LOOKING), ["body", "subject"]),
        (_consent(f"+49 {SECRET_LOOKING}"), ["body", "subject"]),
        (_consent("0151 2222 3333"), ["body", "channel"]),  # a number has no e-mail channel
        (
            _consent("a@example.de", occurred_at="2199-01-01T00:00:00+00:00"),
            ["body", "occurred_at"],
        ),
        (_consent("a@example.de", occurred_at="2025-01-01T00:00:00"), ["body", "occurred_at"]),
        (_consent("a@example.de", purpose=SECRET_LOOKING), ["body", "purpose"]),
        (
            _consent("a@example.de", text_version=f"v1\u202e{SECRET_LOOKING}"),
            ["body", "text_version"],
        ),
        (_consent("a@example.de", note=SECRET_LOOKING), ["body", "note"]),
    ],
)
async def test_bad_consent_input_is_422_naming_the_field_never_echoing_it(
    notify: httpx.AsyncClient, onboarded: dict[str, str], body: dict[str, Any], field: list[str]
) -> None:
    reply = await notify.post(
        "/v1/consents", headers=auth_header("client", tenant=onboarded["a"]), json=body
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == field
    assert SECRET_LOOKING not in reply.text


async def test_bad_query_input_is_422_naming_the_parameter_never_echoing_it(
    notify: httpx.AsyncClient, onboarded: dict[str, str]
) -> None:
    client = auth_header("client", tenant=onboarded["a"])
    for path, params, field in (
        ("/v1/consents", {"subject": SECRET_LOOKING}, ["query", "subject"]),
        ("/v1/consents", {}, ["query", "subject"]),
        ("/v1/deliveries", {"status": SECRET_LOOKING}, ["query", "status"]),
        ("/v1/deliveries", {"limit": "0"}, ["query", "limit"]),
    ):
        reply = await notify.get(path, params=params, headers=client)
        assert reply.status_code == 422, (path, params)
        assert reply.json()["detail"][0]["loc"] == field
        assert SECRET_LOOKING not in reply.text


async def test_r_con_2_r_dsr_17_an_erased_recipient_is_not_granted_consent_again_by_a_tenant_change(
    notify: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    """A recipient withdrew, then had their data erased; the client's recipient list, its
    own account data, still names them. The next change of the tenant must not record a
    fresh "written" consent in their name."""
    bootstrap = servers.kafka_bootstrap_servers
    tenant = new_tenant()
    client = auth_header("client", tenant=tenant, sub="anna")
    erased, added = address(tenant), address(tenant, "empfang")
    await publish(bootstrap, tenant_changed(tenant, [(Channel.EMAIL, erased, "Frau Meyer")]))

    async def history(subject: str) -> list[str]:
        return await _statuses(notify, client, subject)

    async def granted_on_onboarding() -> bool:
        return await history(erased) == ["granted"]

    await eventually(granted_on_onboarding)
    assert (await notify.post("/v1/consents", headers=client, json=_consent(erased))).is_success
    order = RetentionDue(
        request_id=uuid.uuid4().hex,
        scope=SubjectScope(
            kind="subject",
            identifiers=(SubjectId(kind=SubjectKind.EMAIL, value=erased),),
            tenant_id=tenant,
        ),
        reason=RetentionReason.DATA_SUBJECT_REQUEST,
        issued_at=dt.datetime.now(dt.UTC),
    )
    await publish(bootstrap, make_event(order, tenant_id=tenant, source="/switchboard/retention"))

    async def erased_now() -> bool:
        return await history(erased) == []

    await eventually(erased_now)
    await publish(
        bootstrap,
        tenant_changed(
            tenant, [(Channel.EMAIL, erased, "Frau Meyer"), (Channel.EMAIL, added, "Empfang")]
        ),
    )

    async def newly_named_granted() -> bool:
        return await history(added) == ["granted"]

    await eventually(newly_named_granted)  # the change was handled
    assert await history(erased) == []
    listed = (await notify.get("/v1/recipients", headers=client)).json()
    assert {r["address"]: r["consent"]["status"] for r in listed} == {
        erased: None,
        added: "granted",
    }


async def test_r_con_2_an_older_tenant_change_neither_revives_a_removed_recipient_nor_grants_it(
    notify: httpx.AsyncClient, servers: ServerEndpoints
) -> None:
    """A `tenant.changed` older than the stored profile (replayed, redelivered late) changes
    nothing: before, notify took it whole, so a terminated client was active again and a
    recipient the client had removed was back, with a fresh "written" consent."""
    bootstrap = servers.kafka_bootstrap_servers
    tenant = new_tenant()
    client = auth_header("client", tenant=tenant, sub="anna")
    kept, removed = address(tenant), address(tenant, "alt")
    now = dt.datetime.now(dt.UTC)
    newer = tenant_changed(
        tenant, [(Channel.EMAIL, kept, "Frau Meyer")], status=ContractStatus.TERMINATED
    )
    older = tenant_changed(tenant, [(Channel.EMAIL, removed, "Frau Alt")])
    await publish(bootstrap, newer.model_copy(update={"time": now}))
    await publish(bootstrap, older.model_copy(update={"time": now - dt.timedelta(days=30)}))
    # a third, newest change of the same tenant (its partition: handled after the older)
    later = address(tenant, "spaeter")
    latest = tenant_changed(
        tenant,
        [(Channel.EMAIL, kept, "Frau Meyer"), (Channel.EMAIL, later, "Empfang")],
        status=ContractStatus.TERMINATED,
    )
    await publish(bootstrap, latest.model_copy(update={"time": now + dt.timedelta(seconds=1)}))

    async def history(subject: str) -> list[str]:
        return await _statuses(notify, client, subject)

    async def latest_handled() -> bool:
        return await history(later) == ["granted"]

    await eventually(latest_handled)
    assert await history(removed) == []  # the older change granted nothing in their name
    listed = (await notify.get("/v1/recipients", headers=client)).json()
    assert sorted(r["address"] for r in listed) == sorted([kept, later])

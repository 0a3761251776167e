"""Deliveries, decisions and backoff (no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from switchboard_contracts.common import Caller
from switchboard_contracts.consent import ConsentPurpose, ConsentStatus
from switchboard_contracts.tenants import Channel, ContractStatus
from switchboard_contracts.tenants import Recipient as Given
from switchboard_notify.domain import (
    DeliveryStatus,
    NoteCopy,
    Recipient,
    TenantProfile,
    Verdict,
    decide,
    delivery_id,
    plan_deliveries,
)
from switchboard_notify.outcomes import retry_delay

NOW = dt.datetime(2025, 3, 14, 10, 0, tzinfo=dt.UTC)
NOTE = NoteCopy(
    note_id="n-1",
    tenant_id="t",
    call_id="c",
    caller=Caller(name="Erika", phone="+4915211014450"),
    concern="Rückruf",
    contact_person=None,
    started_at=NOW,
)


def _tenant(status: ContractStatus = ContractStatus.ACTIVE) -> TenantProfile:
    recipients = (
        Recipient(Channel.EMAIL, "a@example.de"),
        Recipient(Channel.SMS, "+4915112345678"),
        Recipient(Channel.SMS, "02411234567", valid=False),
    )
    return TenantProfile("t", False, status, recipients, NOW)


def test_recipients_are_normalised_and_unusable_ones_marked() -> None:
    assert Recipient.from_payload(Given(channel=Channel.SMS, address="0151 1234 5678")) == (
        Recipient(Channel.SMS, "+4915112345678")
    )
    assert Recipient.from_payload(
        Given(channel=Channel.EMAIL, address="Büro@Example.DE")
    ).address == ("büro@example.de")
    assert not Recipient.from_payload(Given(channel=Channel.SMS, address="0241 1234567")).valid


def test_one_pending_delivery_per_valid_recipient_with_stable_ids() -> None:
    planned = plan_deliveries(NOTE, _tenant(), now=NOW, attempt_limit=8, id_domain="example.de")
    assert [(d.channel, d.status) for d in planned] == [
        (Channel.EMAIL, DeliveryStatus.PENDING),
        (Channel.SMS, DeliveryStatus.PENDING),
    ]
    assert planned[0].id == delivery_id("n-1", Channel.EMAIL, "a@example.de")
    assert planned[0].message_id == f"<{planned[0].id}@example.de>"
    assert planned[1].message_id is None
    assert all(d.retention_from == NOW and d.category == "call_data" for d in planned)
    again = plan_deliveries(NOTE, _tenant(), now=NOW, attempt_limit=8, id_domain="example.de")
    assert [d.id for d in again] == [d.id for d in planned]


def test_a_terminated_contract_cancels_every_delivery() -> None:
    planned = plan_deliveries(
        NOTE, _tenant(ContractStatus.TERMINATED), now=NOW, attempt_limit=8, id_domain="x.de"
    )
    assert {(d.status, d.reason) for d in planned} == {
        (DeliveryStatus.CANCELLED, "contract terminated")
    }


@pytest.mark.parametrize(
    ("purpose", "consent", "verdict"),
    [
        (ConsentPurpose.NOTIFICATION, ConsentStatus.GRANTED, Verdict.SEND),
        (ConsentPurpose.NOTIFICATION, ConsentStatus.WITHDRAWN, Verdict.SUPPRESS),
        (ConsentPurpose.NOTIFICATION, None, Verdict.SUPPRESS),
        (ConsentPurpose.MARKETING, None, Verdict.SUPPRESS),
        (ConsentPurpose.MARKETING, ConsentStatus.WITHDRAWN, Verdict.SUPPRESS),
        (ConsentPurpose.MARKETING, ConsentStatus.GRANTED, Verdict.SEND),
    ],
)
def test_r_con_1_r_con_2_only_a_granted_consent_of_the_purpose_lets_a_message_go(
    purpose: ConsentPurpose, consent: ConsentStatus | None, verdict: Verdict
) -> None:
    decision = decide(
        channel=Channel.EMAIL,
        recipient="a@example.de",
        purpose=purpose,
        tenant=_tenant(),
        note=NOTE,
        consent=consent,
    )
    assert decision.verdict is verdict


def test_deleted_note_ended_contract_and_removed_recipient_stop_a_delivery() -> None:
    def verdict(**changes: object) -> tuple[Verdict, str | None]:
        args: dict[str, object] = {
            "channel": Channel.EMAIL,
            "recipient": "a@example.de",
            "purpose": ConsentPurpose.NOTIFICATION,
            "tenant": _tenant(),
            "note": NOTE,
            "consent": ConsentStatus.GRANTED,
        }
        args.update(changes)
        decision = decide(**args)  # type: ignore[arg-type]
        return decision.verdict, decision.reason

    assert verdict(note=None) == (Verdict.CANCEL, "note deleted")
    assert verdict(tenant=_tenant(ContractStatus.TERMINATED))[0] is Verdict.CANCEL
    assert verdict(recipient="gone@example.de") == (
        Verdict.SUPPRESS,
        "recipient removed by the client",
    )


def test_r_dsr_18_a_restricted_caller_suppresses_the_delivery_even_with_consent() -> None:
    """The recipient's consent covers their address, not the caller's data (Art. 18(2))."""
    granted = {
        "channel": Channel.EMAIL,
        "recipient": "a@example.de",
        "purpose": ConsentPurpose.NOTIFICATION,
        "tenant": _tenant(),
        "consent": ConsentStatus.GRANTED,
    }
    restricted = decide(note=NOTE, restricted=True, **granted)  # type: ignore[arg-type]
    assert (restricted.verdict, restricted.reason) == (Verdict.SUPPRESS, "restricted (Art. 18)")
    assert decide(note=None, restricted=True, **granted).verdict is Verdict.CANCEL  # type: ignore[arg-type]
    assert decide(note=NOTE, **granted).verdict is Verdict.SEND  # type: ignore[arg-type]


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    def low(attempt: int) -> float:
        return retry_delay(attempt, base_s=5, cap_s=900, rand=lambda: 0.0)

    def high(attempt: int) -> float:
        return retry_delay(attempt, base_s=5, cap_s=900, rand=lambda: 1.0)

    assert [high(a) for a in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert [low(a) for a in (1, 2, 3)] == [2.5, 5, 10]
    assert high(30) == 900
    assert low(1000) == 450


def test_retry_after_is_a_floor_but_capped() -> None:
    def delay(retry_after: float) -> float:
        return retry_delay(
            1,
            base_s=0.1,
            cap_s=1,
            retry_after_s=retry_after,
            retry_after_cap_s=60,
            rand=lambda: 0.5,
        )

    assert delay(7) == 7
    assert delay(0) == pytest.approx(0.075)
    assert delay(10_000) == 60

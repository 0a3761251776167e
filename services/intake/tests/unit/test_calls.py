"""Call rules without I/O: recording consent (R-REC-1), timing, and the events of a call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_contracts.calls import RecordingRef
from switchboard_contracts.common import Caller
from switchboard_contracts.tenants import ContractStatus
from switchboard_intake import calls
from switchboard_intake.calls import Call, CallDetails
from switchboard_platform.errors import Unprocessable

NOW = datetime(2025, 5, 20, 10, 0, tzinfo=UTC)


def details(**fields) -> CallDetails:
    return CallDetails(
        caller=Caller(name="Erika Mustermann", phone="+491701234567"),
        concern="Rückruf erbeten",
        started_at=NOW - timedelta(minutes=3),
        **fields,
    )


def call(**fields) -> Call:
    return Call(
        **details(**fields).model_dump(),
        call_id="c-1",
        tenant_id="t-1",
        agent_id="agent-7",
        received_at=NOW,
    )


def test_r_rec_1_a_recording_without_consent_is_refused():
    refused = details(recording=RecordingRef(consent=False, url="https://rec.example/1"))

    with pytest.raises(Unprocessable) as caught:
        calls.check_details(refused, NOW)

    assert caught.value.field == "recording.url"


@pytest.mark.parametrize(
    "recording",
    [None, RecordingRef(consent=False), RecordingRef(consent=True, url="https://rec.example/1")],
)
def test_r_rec_1_consent_or_no_recording_is_accepted(recording):
    calls.check_details(details(recording=recording), NOW)


def test_a_call_may_not_start_in_the_future_beyond_clock_skew():
    calls.check_details(
        details().model_copy(update={"started_at": NOW + timedelta(minutes=4)}), NOW
    )

    with pytest.raises(Unprocessable) as caught:
        calls.check_details(
            details().model_copy(update={"started_at": NOW + timedelta(hours=1)}), NOW
        )

    assert caught.value.field == "started_at"


def test_a_terminated_tenant_takes_no_calls():
    calls.check_accepts_calls(ContractStatus.ACTIVE, "tenant_id")
    calls.check_accepts_calls(ContractStatus.PROSPECT, "tenant_id")

    with pytest.raises(Unprocessable) as caught:
        calls.check_accepts_calls(ContractStatus.TERMINATED, "dialed_number")

    assert caught.value.field == "dialed_number"


def test_r_call_1_call_received_carries_the_call():
    event = calls.received_event(call(contact_person="Dr. Weber", duration_seconds=95))

    assert (event.tenantid, event.subject) == ("t-1", "c-1")
    assert event.data.caller.phone == "+491701234567"
    assert event.data.contact_person == "Dr. Weber"
    assert event.data.agent_id == "agent-7"
    assert event.data.received_at == NOW


def test_r_rec_1_consent_is_recorded_only_when_given():
    granted = calls.consent_events(call(recording=RecordingRef(consent=True)), "notice-v2")

    assert calls.consent_events(call(), "notice-v2") == []
    assert calls.consent_events(call(recording=RecordingRef(consent=False)), "notice-v2") == []
    [event] = granted
    assert event.data.purpose == "recording"
    assert event.data.subject.value == "+491701234567"
    assert event.data.text_version == "notice-v2"
    assert event.data.occurred_at == NOW - timedelta(minutes=3)

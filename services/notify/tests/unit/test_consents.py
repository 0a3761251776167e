"""The consent registry's rules (R-CON-2, R-CON-3)."""

from __future__ import annotations

import datetime as dt

import pytest

from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.tenants import Channel, ContractStatus
from switchboard_notify.consents import (
    ConsentRecord,
    Declaration,
    current_status,
    onboarding_consent,
    subject_of,
)
from switchboard_notify.domain import Recipient, TenantProfile
from switchboard_platform.inputs import InvalidInput

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
EMAIL = SubjectId(kind=SubjectKind.EMAIL, value="a@example.de")


def _record(
    status: ConsentStatus, occurred: dt.datetime, recorded: dt.datetime | None = None
) -> ConsentRecord:
    return ConsentRecord(
        consent_id=f"c-{occurred.isoformat()}-{status}",
        tenant_id="t",
        subject=EMAIL,
        purpose=ConsentPurpose.NOTIFICATION,
        channel=ConsentChannel.EMAIL,
        status=status,
        occurred_at=occurred,
        method=ConsentMethod.WEB_FORM,
        text_version="v1",
        recorded_by="client:t/u",
        recorded_at=recorded or occurred,
    )


def test_subjects_are_e_mail_addresses_or_german_or_e164_numbers() -> None:
    assert subject_of(" Anna@Example.DE ") == SubjectId(
        kind=SubjectKind.EMAIL, value="anna@example.de"
    )
    assert subject_of("0151 1234 5678").value == "+4915112345678"
    assert subject_of("+49 (241) 123-4567").value == "+492411234567"
    for bad in ("", "anna", "0800-FLOWERS", "@", "12"):
        with pytest.raises(InvalidInput) as caught:
            subject_of(bad)
        assert bad not in caught.value.message or not bad


def test_r_con_2_the_latest_record_in_effect_is_the_current_state() -> None:
    granted = _record(ConsentStatus.GRANTED, T0)
    withdrawn = _record(ConsentStatus.WITHDRAWN, T0 + dt.timedelta(days=1))
    regranted = _record(ConsentStatus.GRANTED, T0 + dt.timedelta(days=2))
    at = T0 + dt.timedelta(hours=36)
    assert current_status([], at) is None
    assert current_status([withdrawn, granted], at) is ConsentStatus.WITHDRAWN
    assert current_status([regranted, withdrawn, granted], at) is ConsentStatus.WITHDRAWN  # not yet
    assert current_status([regranted, withdrawn, granted], at + dt.timedelta(days=1)) is (
        ConsentStatus.GRANTED
    )
    # the same moment: the one recorded last wins
    late = _record(ConsentStatus.WITHDRAWN, T0, recorded=T0 + dt.timedelta(seconds=1))
    assert current_status([late, granted], at) is ConsentStatus.WITHDRAWN


def test_r_con_3_onboarding_consent_is_recorded_once_as_a_written_instruction() -> None:
    tenant = TenantProfile("t", False, ContractStatus.ACTIVE, (), T0)
    recipient = Recipient(Channel.SMS, "+4915112345678")
    first = onboarding_consent(tenant, recipient, notice_version="onb-v1", recorded_at=T0)
    again = onboarding_consent(
        tenant, recipient, notice_version="onb-v1", recorded_at=T0 + dt.timedelta(days=3)
    )
    assert first.consent_id == again.consent_id
    assert (first.purpose, first.channel, first.method, first.status) == (
        ConsentPurpose.NOTIFICATION,
        ConsentChannel.SMS,
        ConsentMethod.WRITTEN,
        ConsentStatus.GRANTED,
    )
    assert first.subject == SubjectId(kind=SubjectKind.PHONE, value="+4915112345678")
    # proof for as long as the account runs: no clock until the tenant is offboarded (R-RET-4)
    assert (first.category, first.retention_from) == ("customer_account", None)


@pytest.mark.parametrize(
    ("subject", "purpose", "channel", "field"),
    [
        ("a@example.de", ConsentPurpose.NOTIFICATION, ConsentChannel.SMS, "channel"),
        ("+4915112345678", ConsentPurpose.NOTIFICATION, ConsentChannel.EMAIL, "channel"),
        ("a@example.de", ConsentPurpose.RECORDING, ConsentChannel.NONE, "channel"),
    ],
)
def test_declarations_must_fit_subject_purpose_and_channel(
    subject: str, purpose: ConsentPurpose, channel: ConsentChannel, field: str
) -> None:
    declaration = Declaration(
        tenant_id="t",
        subject=subject_of(subject),
        purpose=purpose,
        channel=channel,
        status=ConsentStatus.GRANTED,
        method=ConsentMethod.API,
        text_version="v1",
        recorded_by="operator:o",
    )
    with pytest.raises(InvalidInput) as caught:
        declaration.to_record(consent_id="x", now=T0)
    assert caught.value.field == field


def test_a_declaration_cannot_be_dated_ahead() -> None:
    declaration = Declaration(
        tenant_id="t",
        subject=EMAIL,
        purpose=ConsentPurpose.MARKETING,
        channel=ConsentChannel.EMAIL,
        status=ConsentStatus.GRANTED,
        method=ConsentMethod.API,
        text_version="v1",
        recorded_by="operator:o",
        occurred_at=T0 + dt.timedelta(hours=1),
    )
    with pytest.raises(InvalidInput) as caught:
        declaration.to_record(consent_id="x", now=T0)
    assert caught.value.field == "occurred_at"
    assert declaration.to_record(consent_id="x", now=T0 + dt.timedelta(hours=1)).occurred_at == (
        T0 + dt.timedelta(hours=1)
    )

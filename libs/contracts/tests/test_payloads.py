"""The rules the payload models enforce beyond field types: subjects, scopes, deadlines."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import ConsentChanged, ConsentStatus
from switchboard_contracts.delivery import CrmSynced
from switchboard_contracts.dsr import DataSubjectRight, DsrFragment, DsrRequested
from switchboard_contracts.retention import (
    CategoryScope,
    RetentionCompleted,
    RetentionDue,
    SubjectScope,
    TenantScope,
)
from switchboard_contracts.samples import CALLER_PHONE, sample_payload

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def test_phone_subject_must_be_e164() -> None:
    assert SubjectId(kind=SubjectKind.PHONE, value=CALLER_PHONE).value == CALLER_PHONE
    with pytest.raises(ValidationError, match=r"E\.164"):
        SubjectId(kind=SubjectKind.PHONE, value="0241 123456")


def test_email_subject_must_be_an_address() -> None:
    with pytest.raises(ValidationError, match="'@'"):
        SubjectId(kind=SubjectKind.EMAIL, value="anna.example.de")


@pytest.mark.parametrize(
    "field", ["subject", "purpose", "channel", "status", "occurred_at", "method", "text_version"]
)
def test_r_con_3_consent_record_shows_who_what_when_how_and_wording(field: str) -> None:
    data = sample_payload(ConsentChanged).model_dump()
    del data[field]
    with pytest.raises(ValidationError, match=field):
        ConsentChanged.model_validate(data)


def test_r_con_2_consent_can_be_withdrawn() -> None:
    consent = sample_payload(ConsentChanged, status="withdrawn", purpose="notification")
    assert consent.status is ConsentStatus.WITHDRAWN


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"kind": "category", "category": "recording", "cutoff": NOW}, CategoryScope),
        (
            {"kind": "subject", "identifiers": [{"kind": "phone", "value": CALLER_PHONE}]},
            SubjectScope,
        ),
        ({"kind": "tenant", "tenant_id": "kanzlei-meyer"}, TenantScope),
    ],
)
def test_retention_scope_is_chosen_by_its_kind(scope: dict[str, object], expected: type) -> None:
    assert isinstance(sample_payload(RetentionDue, scope=scope).scope, expected)


def test_retention_scope_of_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValidationError, match="scope"):
        sample_payload(RetentionDue, scope={"kind": "everything"})


def test_subject_scope_needs_at_least_one_identifier() -> None:
    with pytest.raises(ValidationError, match="identifiers"):
        sample_payload(RetentionDue, scope={"kind": "subject", "identifiers": []})


def test_r_ret_6_receipt_counts_erased_and_retained_records() -> None:
    receipt = sample_payload(RetentionCompleted)
    assert receipt.erased[0].count == 42
    assert receipt.retained[0].reason.startswith("R-RET-5")
    with pytest.raises(ValidationError, match="count"):
        sample_payload(
            RetentionCompleted,
            erased=[{"category": "call_data", "collection": "notes", "count": -1}],
        )


def test_each_data_category_names_its_retention_requirement() -> None:
    assert DataCategory.CALL_DATA.requirement == "R-RET-1"
    assert DataCategory.RECORDING.requirement == "R-RET-2"
    assert {c.requirement for c in DataCategory} == {f"R-RET-{i}" for i in range(1, 6)}


def test_each_data_subject_right_names_its_article() -> None:
    assert [r.article for r in DataSubjectRight] == [15, 16, 17, 18, 20, 21]


def test_r_dsr_t_request_cannot_be_due_before_it_was_made() -> None:
    with pytest.raises(ValidationError, match="due_at"):
        sample_payload(DsrRequested, requested_at=NOW, due_at=NOW - timedelta(days=1))


def test_dsr_request_needs_a_subject_identifier() -> None:
    with pytest.raises(ValidationError, match="identifiers"):
        sample_payload(DsrRequested, identifiers=[])


def test_r_dsr_20_fragment_records_are_structured_json() -> None:
    record = sample_payload(DsrFragment).records[0]
    assert record.data["note_id"] == "note-0001"
    with pytest.raises(ValidationError, match="data"):
        sample_payload(
            DsrFragment, records=[{"category": "call_data", "purpose": "x", "data": "blob"}]
        )


def test_r_sec_5_crm_destination_carries_its_region() -> None:
    assert sample_payload(CrmSynced).destination_region == "EU"
    with pytest.raises(ValidationError, match="destination_region"):
        sample_payload(CrmSynced, destination_region="europe")

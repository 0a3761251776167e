"""Whether a note may leave (R-SEC-3, R-SEC-5), and how it is mapped onto each CRM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_contracts.delivery import Safeguard
from switchboard_contracts.tenants import ContractStatus
from switchboard_crm_sync.connectors.base import (
    Deletion,
    RecordRef,
    Reply,
    UnnamedRecord,
    id_of,
    plain_id,
)
from switchboard_crm_sync.connectors.hubspot import HubSpotConnector
from switchboard_crm_sync.connectors.hubspot import _format as hubspot_format
from switchboard_crm_sync.connectors.pipedrive import _format as pipedrive_format
from switchboard_crm_sync.connectors.salesforce import _format as salesforce_format
from switchboard_crm_sync.domain import (
    Destination,
    Kind,
    NoteContent,
    TenantProfile,
    Verdict,
    may_transfer,
)
from switchboard_crm_sync.mapping import (
    FieldMapping,
    MappingRefused,
    NoteField,
    check_for_kind,
    contact_rules,
    properties,
    record_rules,
)

NOTE = NoteContent(
    note_id="n1",
    call_id="c1",
    tenant_id="t1",
    caller_name="Erika Maria Mustermann",
    caller_phone="+4915211014450",
    caller_email=None,
    caller_company="ACME",
    concern="Rückruf <bitte>\nzweite Zeile",
    contact_person="Dr. Weber",
    started_at=datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
    duration_seconds=95,
    forwarded_from=None,
    created_at=datetime(2025, 3, 14, 9, 32, tzinfo=UTC),
)
OPEN = TenantProfile("t1", secrecy_bound=False, contract_status=ContractStatus.ACTIVE)
SECRET = TenantProfile("t1", secrecy_bound=True, contract_status=ContractStatus.ACTIVE)
NO_WAIT, GRACE = timedelta(0), timedelta(minutes=10)


def where(region: str, safeguard: Safeguard | None = None, opt_in: bool = False) -> Destination:
    return Destination("crm.example", region, safeguard, opt_in)


@pytest.mark.parametrize(
    ("tenant", "destination", "verdict"),
    [
        (OPEN, where("EU"), Verdict.ALLOW),
        (OPEN, where("DE"), Verdict.ALLOW),
        (OPEN, where("NO"), Verdict.ALLOW),
        (OPEN, where("US"), Verdict.REFUSE),
        (OPEN, where("US", Safeguard.SCC), Verdict.ALLOW),
        (OPEN, where("CH", Safeguard.ADEQUACY), Verdict.ALLOW),
        (SECRET, where("EU"), Verdict.REFUSE),
        (SECRET, where("EU", opt_in=True), Verdict.ALLOW),
        (SECRET, where("US", opt_in=True), Verdict.REFUSE),
        (None, where("EU", opt_in=True), Verdict.WAIT),
        (TenantProfile("t1", False, ContractStatus.TERMINATED), where("EU"), Verdict.REFUSE),
    ],
)
def test_r_sec_3_r_sec_5_who_may_send_where(
    tenant: TenantProfile | None, destination: Destination, verdict: Verdict
) -> None:
    assert may_transfer(tenant, destination, waited=NO_WAIT, grace=GRACE).verdict is verdict


def test_r_sec_3_an_unknown_tenant_is_treated_as_secrecy_bound_after_the_grace() -> None:
    late = timedelta(minutes=11)
    assert may_transfer(None, where("EU"), waited=late, grace=GRACE).verdict is Verdict.REFUSE
    assert (
        may_transfer(None, where("EU", opt_in=True), waited=late, grace=GRACE).verdict
        is Verdict.ALLOW
    )


def test_hubspot_defaults_format_milliseconds_and_iso_times() -> None:
    props = properties(NOTE, record_rules(Kind.HUBSPOT, FieldMapping()), hubspot_format)
    assert props["hs_call_duration"] == "95000"
    assert props["hs_timestamp"] == "2025-03-14T09:30:00.000Z"
    assert props["hs_call_direction"] == "INBOUND"
    assert props["hs_call_external_id"] == "n1"
    assert "hs_call_to_number" not in props  # unknown values are left out
    contact = properties(NOTE, contact_rules(Kind.HUBSPOT, FieldMapping()), hubspot_format)
    assert contact == {
        "firstname": "Erika Maria",
        "lastname": "Mustermann",
        "phone": "+4915211014450",
        "company": "ACME",
    }


def test_renames_drops_and_fixed_values_apply_over_the_defaults() -> None:
    mapping = FieldMapping(
        record={NoteField.CONCERN: "anliegen__c", NoteField.SUMMARY: None},
        fixed={"Priority": "High", "Status": "Open"},
    )
    props = properties(NOTE, record_rules(Kind.SALESFORCE, mapping), salesforce_format)
    assert props["anliegen__c"] == NOTE.concern
    assert "Description" not in props
    assert (props["Priority"], props["Status"], props["TaskSubtype"]) == ("High", "Open", "Call")
    assert props["ActivityDate"] == "2025-03-14"
    assert props["CallDurationInSeconds"] == 95


def test_pipedrive_gets_its_time_format_html_notes_and_phone_lists() -> None:
    props = properties(NOTE, record_rules(Kind.PIPEDRIVE, FieldMapping()), pipedrive_format)
    assert (props["start_time"], props["end_time"]) == (
        "2025-03-14 09:30:00",
        "2025-03-14 09:31:35",
    )
    assert props["note"].startswith("Rückruf &lt;bitte&gt;<br>zweite Zeile")
    person = properties(NOTE, contact_rules(Kind.PIPEDRIVE, FieldMapping()), pipedrive_format)
    assert person["phone"] == [{"value": "+4915211014450", "primary": True, "label": "work"}]


def test_options_belong_to_their_kind_and_targets_are_unique() -> None:
    with pytest.raises(MappingRefused):
        check_for_kind(FieldMapping(hubspot_object="notes"), Kind.PIPEDRIVE)
    with pytest.raises(MappingRefused):
        check_for_kind(FieldMapping(record={NoteField.CONCERN: "x"}), Kind.WEBHOOK)
    check_for_kind(FieldMapping(fixed={"source": "switchboard"}), Kind.WEBHOOK)
    with pytest.raises(ValueError, match="two fields"):
        FieldMapping(record={NoteField.CONCERN: "x", NoteField.TITLE: "x"})


class _RecordingHttp:
    """What a connector asks of its HTTP client; every answer a 204."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def send(self, method: str, path: str, **_: object) -> Reply:
        self.paths.append(f"{method} {path}")
        return Reply(204, {}, None)


async def test_a_hubspot_record_id_is_one_path_segment_whatever_the_crm_answered() -> None:
    """An id `1/../../contacts/42` (from a create answer) deleted contact 42, not the call."""
    http = _RecordingHttp()
    hubspot = HubSpotConnector(http, FieldMapping())  # type: ignore[arg-type]
    deletion = Deletion(note_id="n", call_id="c", deleted_at="2025-03-14T09:30:00Z", reason="x")
    await hubspot.delete(RecordRef("calls", "1/../../contacts/42"), deletion)
    assert http.paths == ["DELETE /crm/v3/objects/calls/1%2F..%2F..%2Fcontacts%2F42"]


def test_a_record_id_is_taken_only_in_the_form_crms_give_it() -> None:
    """A 5,000-digit person id made `int()` raise (internal error); a path or a bool was
    stored as an id and later sent back in a URL."""
    assert plain_id("00T000000000001AAA") == "00T000000000001AAA"
    assert plain_id(42) == "42"
    for odd in (True, 1.5, None, "", "1/../x", "a b", "²", "9" * 101, 10**5000, {"id": 1}):
        assert plain_id(odd) is None, odd
    assert id_of({"success": True, "data": {"id": 7}}, "id") == "7"
    bodies: list[object] = [{"data": {"id": "1/../persons/7"}}, {"data": {}}, [], None]
    for body in bodies:
        with pytest.raises(UnnamedRecord):
            id_of(body, "id")

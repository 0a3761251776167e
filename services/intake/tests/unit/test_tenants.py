"""Tenant rules without I/O: contract dates, time windows, retention class (R-ONB-1, R-RET-3/4)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.tenants import ContractStatus, Industry
from switchboard_intake import tenants
from switchboard_intake.tenants import TenantProfile, Window
from switchboard_platform.errors import Unprocessable

TODAY = date(2025, 5, 20)
CREATED = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)


def profile(**fields) -> TenantProfile:
    return TenantProfile.model_validate({"name": "Kanzlei Meyer", "industry": "law", **fields})


@pytest.mark.parametrize(
    ("industry", "bound"), [("law", True), ("medicine", True), ("tax", True), ("other", False)]
)
def test_r_sec_3_law_medicine_and_tax_are_bound_by_secrecy(industry, bound):
    assert profile(industry=industry).secrecy_bound is bound


def test_a_new_tenant_is_a_prospect():
    assert tenants.settle(profile(), TODAY).contract_status is ContractStatus.PROSPECT


def test_terminating_without_a_date_terminates_today():
    settled = tenants.settle(profile(contract_status="terminated"), TODAY)

    assert settled.contract_terminated_on == TODAY


def test_activating_without_a_signing_date_signs_today():
    settled = tenants.settle(profile(contract_status="active"), TODAY)

    assert settled.contract_signed_on == TODAY


def test_a_running_contract_has_no_termination_date():
    with pytest.raises(Unprocessable) as caught:
        tenants.settle(profile(contract_status="active", contract_terminated_on=TODAY), TODAY)

    assert caught.value.field == "contract_terminated_on"


def test_a_contract_cannot_end_before_it_was_signed():
    terminated = profile(
        contract_status="terminated",
        contract_signed_on=date(2025, 3, 1),
        contract_terminated_on=date(2025, 2, 1),
    )

    with pytest.raises(Unprocessable) as caught:
        tenants.settle(terminated, TODAY)

    assert caught.value.field == "contract_terminated_on"


def test_repeated_forwarding_numbers_are_kept_once_in_order():
    numbers = ("+492411234567", "+4915211014450", "+492411234567")

    settled = tenants.settle(profile(forwarding_numbers=numbers), TODAY)

    assert settled.forwarding_numbers == ("+492411234567", "+4915211014450")


def test_a_time_window_must_end_after_it_starts():
    with pytest.raises(ValidationError) as caught:
        Window(weekday=1, start="17:00", end="08:00")

    assert caught.value.errors()[0]["loc"] == ("end",)


def test_merge_replaces_given_fields_and_keeps_the_others():
    current = profile(notes="alt", forwarding_numbers=("+492411234567",))

    merged = tenants.merge(current, {"notes": None, "industry": Industry.TAX})

    assert (merged.notes, merged.industry, merged.name) == (None, Industry.TAX, "Kanzlei Meyer")
    assert merged.forwarding_numbers == ("+492411234567",)


def test_merge_that_reactivates_a_contract_drops_its_termination_date():
    ended = profile(contract_status="terminated", contract_terminated_on=date(2025, 1, 31))

    merged = tenants.merge(ended, {"contract_status": ContractStatus.ACTIVE})

    assert merged.contract_terminated_on is None


def test_r_ret_3_a_prospects_clock_starts_at_onboarding():
    prospect = profile()

    assert tenants.category(prospect) is DataCategory.PROSPECT_ONBOARDING
    assert tenants.retention_from(prospect, CREATED) == CREATED


def test_r_ret_4_an_active_clients_clock_has_not_started():
    active = profile(contract_status="active", contract_signed_on=date(2025, 1, 1))

    assert tenants.category(active) is DataCategory.CUSTOMER_ACCOUNT
    assert tenants.retention_from(active, CREATED) is None


def test_r_ret_4_a_terminated_clients_clock_starts_at_termination():
    ended = profile(contract_status="terminated", contract_terminated_on=date(2025, 6, 30))

    assert tenants.category(ended) is DataCategory.CUSTOMER_ACCOUNT
    assert tenants.retention_from(ended, CREATED) == datetime(2025, 6, 30, tzinfo=UTC)


def test_tenant_changed_carries_the_whole_profile_keyed_by_tenant():
    full = profile(notes="siezen", forwarding_numbers=("+492411234567",))

    event = tenants.changed_event("t-1", full, "updated")

    assert (event.tenantid, event.subject, event.source) == ("t-1", "t-1", "/switchboard/intake")
    assert event.data.change == "updated"
    assert event.data.secrecy_bound is True
    assert event.data.notes == "siezen"
    assert event.data.forwarding_numbers == ("+492411234567",)

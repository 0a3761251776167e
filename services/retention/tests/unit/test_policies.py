"""The policy table: one rule per category, each naming its requirement (R-RET-1..5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_contracts.categories import DataCategory
from switchboard_retention.policies import POLICIES, Period, add_months, policy_for

AT = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def test_every_category_has_exactly_one_rule_with_its_requirement() -> None:
    assert sorted(p.category for p in POLICIES) == sorted(DataCategory)
    assert {p.category: p.requirement for p in POLICIES} == {
        DataCategory.CALL_DATA: "R-RET-1",
        DataCategory.RECORDING: "R-RET-2",
        DataCategory.PROSPECT_ONBOARDING: "R-RET-3",
        DataCategory.CUSTOMER_ACCOUNT: "R-RET-4",
        DataCategory.LEGAL_HOLD: "R-RET-5",
    }


@pytest.mark.parametrize(
    ("category", "iso", "cutoff"),
    [
        (DataCategory.CALL_DATA, "P60D", datetime(2026, 1, 30, 12, 0, tzinfo=UTC)),
        (DataCategory.RECORDING, "P30D", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
        (DataCategory.PROSPECT_ONBOARDING, "P90D", datetime(2025, 12, 31, 12, 0, tzinfo=UTC)),
        (DataCategory.CUSTOMER_ACCOUNT, "P5Y", datetime(2021, 3, 31, 12, 0, tzinfo=UTC)),
        (DataCategory.LEGAL_HOLD, "P10Y", datetime(2016, 3, 31, 12, 0, tzinfo=UTC)),
    ],
)
def test_r_ret_1_to_5_each_period_gives_its_cutoff(
    category: DataCategory, iso: str, cutoff: datetime
) -> None:
    policy = policy_for(category)
    assert policy.period.iso == iso
    assert policy.period.before(AT) == cutoff
    assert policy.period.after(cutoff) == AT


def test_calendar_months_end_on_the_last_day_of_a_shorter_month() -> None:
    assert add_months(AT, -1) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert add_months(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 15, tzinfo=UTC), 1) == datetime(2027, 1, 15, tzinfo=UTC)
    assert Period().iso == "P0D"

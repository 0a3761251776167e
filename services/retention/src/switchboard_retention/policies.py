"""The retention policy as code: one rule per data category, each naming its R-id (POLICY.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from switchboard_contracts.categories import DataCategory


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` moved by whole calendar months; the day is clamped to the month's end."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


@dataclass(frozen=True, slots=True)
class Period:
    """A retention period in calendar years, months and days."""

    years: int = 0
    months: int = 0
    days: int = 0

    @property
    def iso(self) -> str:
        """ISO 8601, e.g. `P60D`, `P5Y`."""
        parts = [(self.years, "Y"), (self.months, "M"), (self.days, "D")]
        text = "".join(f"{n}{unit}" for n, unit in parts if n)
        return f"P{text or '0D'}"

    def after(self, start: datetime) -> datetime:
        """When a clock started at `start` runs out."""
        return add_months(start, 12 * self.years + self.months) + timedelta(days=self.days)

    def before(self, moment: datetime) -> datetime:
        """The cutoff at `moment`: clocks started before it have run out."""
        return add_months(moment - timedelta(days=self.days), -(12 * self.years + self.months))


@dataclass(frozen=True, slots=True)
class Policy:
    """How long one category is kept, from when, and which requirement says so."""

    category: DataCategory
    period: Period
    clock: str
    rule: str

    @property
    def requirement(self) -> str:
        """The POLICY.md id, e.g. `R-RET-1`."""
        return self.category.requirement


POLICIES: tuple[Policy, ...] = (
    Policy(
        DataCategory.CALL_DATA,
        Period(days=60),
        "the call's start",
        "Phone and call data (call records, notes, their deliveries and CRM copies): deleted "
        "at the latest 60 days after the call",
    ),
    Policy(
        DataCategory.RECORDING,
        Period(days=30),
        "the call's start",
        "Recordings: deleted 30 days after the call",
    ),
    Policy(
        DataCategory.PROSPECT_ONBOARDING,
        Period(days=90),
        "the prospect's onboarding",
        "Onboarding data of a prospect who does not sign: deleted after 90 days at the "
        "latest, unless a legal hold applies",
    ),
    Policy(
        DataCategory.CUSTOMER_ACCOUNT,
        Period(years=5),
        "the contract's termination",
        "Customer account: kept for the contract; after termination up to 5 years, then deleted",
    ),
    Policy(
        DataCategory.LEGAL_HOLD,
        Period(years=10),
        "the record's date",
        "E-mails and documents under commercial and tax law: 6 or 10 years (§ 257 HGB, "
        "§ 147 AO); sweeps keep them for the longer duty, subject and tenant erasure never "
        "take them earlier",
    ),
)
PROOF = "R-RET-6: every erasure is answered with a receipt, kept in a verifiable hash chain"


def policy_for(category: DataCategory) -> Policy:
    """The rule of one category."""
    return next(p for p in POLICIES if p.category is category)


def retention_periods() -> dict[DataCategory, str]:
    """Each category's period in ISO 8601, as data-subject requests carry it."""
    return {p.category: p.period.iso for p in POLICIES}

"""The data categories of POLICY.md's retention rules, which every stored document carries."""

from enum import StrEnum

from pydantic import Field

from .common import ContractModel, Count, Identifier


class DataCategory(StrEnum):
    """What kind of personal data a record is; each category has its own retention rule."""

    CALL_DATA = "call_data"
    """Call records, notes, their deliveries and CRM copies: at most 60 days (R-RET-1)."""
    RECORDING = "recording"
    """Call recordings: 30 days after the call (R-RET-2)."""
    PROSPECT_ONBOARDING = "prospect_onboarding"
    """Onboarding data of a prospect who did not sign: at most 90 days (R-RET-3)."""
    CUSTOMER_ACCOUNT = "customer_account"
    """A client's account: the contract, then up to 5 years without activity (R-RET-4)."""
    LEGAL_HOLD = "legal_hold"
    """Records under commercial or tax law: 6 or 10 years, overriding earlier erasure (R-RET-5)."""

    @property
    def requirement(self) -> str:
        """The POLICY.md requirement id that sets this category's retention period."""
        return _REQUIREMENTS[self]


_REQUIREMENTS = {
    DataCategory.CALL_DATA: "R-RET-1",
    DataCategory.RECORDING: "R-RET-2",
    DataCategory.PROSPECT_ONBOARDING: "R-RET-3",
    DataCategory.CUSTOMER_ACCOUNT: "R-RET-4",
    DataCategory.LEGAL_HOLD: "R-RET-5",
}


class RecordCount(ContractModel):
    """How many records of one category in one collection of a service an action touched."""

    category: DataCategory
    collection: Identifier = Field(
        description="The service's collection (or other store) the records lie in",
        examples=["notes", "deliveries"],
    )
    count: Count

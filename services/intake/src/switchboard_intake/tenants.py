"""What a tenant is: its onboarding profile (R-ONB-1), its contract rules and retention class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, computed_field, field_validator

from switchboard_contracts import Event, make_event
from switchboard_contracts.common import E164, LongText, Name, ShortText
from switchboard_contracts.tenants import (
    ContactPerson,
    ContractStatus,
    Industry,
    Recipient,
    TenantChanged,
    TimeWindow,
)
from switchboard_platform.errors import Unprocessable

from .domain import EVENT_SOURCE, DataCategory


class Window(TimeWindow):
    """A weekly window, e.g. call hours Monday 08:00-17:00, that ends after it starts."""

    @field_validator("end")
    @classmethod
    def _ends_after_start(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("a time window must end after it starts")
        return end


class TenantProfile(BaseModel):
    """The onboarding questionnaire's answers, as the tenant's current profile."""

    model_config = ConfigDict(frozen=True)

    name: Name
    industry: Industry
    contract_status: ContractStatus = ContractStatus.PROSPECT
    contract_signed_on: date | None = None
    contract_terminated_on: date | None = None
    forwarding_numbers: tuple[E164, ...] = ()
    call_hours: tuple[Window, ...] = ()
    break_hours: tuple[Window, ...] = ()
    calendar_links: tuple[ShortText, ...] = ()
    contact_persons: tuple[ContactPerson, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    notes: LongText | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def secrecy_bound(self) -> bool:
        """Law, medicine and tax are bound by professional secrecy (R-SEC-3)."""
        return self.industry.secrecy_bound


@dataclass(frozen=True, slots=True)
class Tenant:
    """A stored tenant: its id, profile and bookkeeping."""

    tenant_id: str
    profile: TenantProfile
    created_at: datetime
    updated_at: datetime
    version: int = 1


def settle(profile: TenantProfile, today: date) -> TenantProfile:
    """Apply the profile's rules and defaults; raise Unprocessable naming the field at fault."""
    signed, terminated = profile.contract_signed_on, profile.contract_terminated_on
    if profile.contract_status is ContractStatus.ACTIVE and signed is None:
        signed = today
    if profile.contract_status is ContractStatus.TERMINATED:
        terminated = terminated or today
    elif terminated is not None:
        raise Unprocessable(
            "only a terminated contract has a termination date", field="contract_terminated_on"
        )
    if signed is not None and terminated is not None and terminated < signed:
        raise Unprocessable(
            "a contract cannot end before it was signed", field="contract_terminated_on"
        )
    return profile.model_copy(
        update={
            "contract_signed_on": signed,
            "contract_terminated_on": terminated,
            "forwarding_numbers": tuple(dict.fromkeys(profile.forwarding_numbers)),
        }
    )


def merge(current: TenantProfile, changes: Mapping[str, Any]) -> TenantProfile:
    """The profile after a partial update: given fields replace, the others stay."""
    merged = {**current.model_dump(), **changes}
    status = changes.get("contract_status")
    if status not in (None, ContractStatus.TERMINATED) and "contract_terminated_on" not in changes:
        merged["contract_terminated_on"] = None  # a reactivated contract is no longer ended
    return TenantProfile.model_validate(merged)


def category(profile: TenantProfile) -> DataCategory:
    """A prospect's data is onboarding data (R-RET-3); a client's is its account (R-RET-4)."""
    if profile.contract_status is ContractStatus.PROSPECT:
        return DataCategory.PROSPECT_ONBOARDING
    return DataCategory.CUSTOMER_ACCOUNT


def retention_from(profile: TenantProfile, created_at: datetime) -> datetime | None:
    """When the profile's retention clock starts; None while an active contract runs."""
    if profile.contract_status is ContractStatus.PROSPECT:
        return created_at
    if profile.contract_terminated_on is not None:
        return datetime.combine(profile.contract_terminated_on, time(), tzinfo=UTC)
    return None


def changed_event(
    tenant_id: str, profile: TenantProfile, change: Literal["created", "updated"]
) -> Event[TenantChanged]:
    """The `tenant.changed` event carrying the whole current profile."""
    payload = TenantChanged(tenant_id=tenant_id, change=change, **profile.model_dump())
    return make_event(payload, tenant_id=tenant_id, source=EVENT_SOURCE, subject=tenant_id)

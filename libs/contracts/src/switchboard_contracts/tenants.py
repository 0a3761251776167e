"""Payload of `tenant.changed`: a client's profile as onboarded (R-ONB-1)."""

from enum import StrEnum
from typing import Literal

from pydantic import Field

from .common import E164, ContractModel, Day, Identifier, LongText, Name, ShortText
from .envelope import EventPayload
from .topics import TENANT_CHANGED


class Industry(StrEnum):
    """The client's line of business; law, medicine and tax are bound by secrecy."""

    LAW = "law"
    MEDICINE = "medicine"
    TAX = "tax"
    OTHER = "other"

    @property
    def secrecy_bound(self) -> bool:
        """True for professions bound by professional secrecy (R-SEC-3)."""
        return self is not Industry.OTHER


class ContractStatus(StrEnum):
    """Where the client stands: prospect during onboarding, active, or terminated."""

    PROSPECT = "prospect"
    ACTIVE = "active"
    TERMINATED = "terminated"


class Channel(StrEnum):
    """How a call note reaches a recipient."""

    EMAIL = "email"
    SMS = "sms"


class ContactPerson(ContractModel):
    """A person at the client whom callers ask for."""

    name: Name
    position: ShortText | None = None
    phone: E164 | None = None
    email: ShortText | None = None


class Recipient(ContractModel):
    """An address call notes go to."""

    channel: Channel
    address: ShortText
    contact_person: Name | None = None


class TimeWindow(ContractModel):
    """A weekly recurring window, e.g. call hours Monday 08:00-17:00."""

    weekday: int = Field(ge=1, le=7, description="ISO weekday, 1 = Monday")
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$")


class TenantChanged(EventPayload):
    """The whole current profile of a tenant after it was created or changed."""

    topic = TENANT_CHANGED
    version = 1

    tenant_id: Identifier
    change: Literal["created", "updated"]
    name: Name
    industry: Industry
    secrecy_bound: bool
    contract_status: ContractStatus
    contract_signed_on: Day | None = None
    contract_terminated_on: Day | None = None
    forwarding_numbers: tuple[E164, ...] = ()
    call_hours: tuple[TimeWindow, ...] = ()
    break_hours: tuple[TimeWindow, ...] = ()
    calendar_links: tuple[ShortText, ...] = ()
    contact_persons: tuple[ContactPerson, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    notes: LongText | None = None

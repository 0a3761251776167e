"""HTTP request and reply bodies: the Create / Update / Public families of tenants and calls."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from switchboard_contracts.common import Identifier
from switchboard_contracts.tenants import Channel, ContractStatus, Industry
from switchboard_platform.inputs import (
    Day,
    Email,
    FreeText,
    Line,
    Moment,
    Name,
    PublicLink,
    check_email,
    check_public_link,
    clean_text,
    to_business_e164,
    to_e164,
    to_mobile_e164,
)

from .calls import CallDetails
from .domain import MAX_CONTACTS, MAX_ITEMS
from .tenants import Tenant, TenantProfile, Window

Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(to_e164)]
BusinessPhone = Annotated[str, StringConstraints(max_length=40), AfterValidator(to_business_e164)]
"""A client business's own number (dialed, forwarded from): its parse is remembered."""
Text = Line
Concern = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=5000),
    AfterValidator(clean_text),
]
Notes = FreeText
Link = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(check_public_link)
]
RecordingUrl = PublicLink
Windows = Annotated[list[Window], Field(max_length=MAX_ITEMS)]
Numbers = Annotated[list[Phone], Field(max_length=MAX_ITEMS)]
Links = Annotated[list[Link], Field(max_length=MAX_ITEMS)]


class _Body(BaseModel):
    """A request body: unknown fields are refused, so a typo never drops data silently."""

    model_config = ConfigDict(extra="forbid")


class ContactPersonIn(_Body):
    """A person at the client whom callers ask for."""

    name: Name
    position: Text | None = None
    phone: Phone | None = None
    email: Email | None = None


class RecipientIn(_Body):
    """Where call notes go: an e-mail address, or a mobile number for SMS."""

    channel: Channel
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    contact_person: Name | None = None

    @field_validator("address")
    @classmethod
    def _address_fits_channel(cls, address: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        if channel is Channel.SMS:
            return to_mobile_e164(address)
        if channel is Channel.EMAIL:
            return check_email(address)
        return address  # the channel itself is invalid and reported on its own


Contacts = Annotated[list[ContactPersonIn], Field(max_length=MAX_CONTACTS)]
Recipients = Annotated[list[RecipientIn], Field(max_length=MAX_ITEMS)]


class TenantCreate(_Body):
    """The onboarding questionnaire (R-ONB-1)."""

    name: Name
    industry: Industry
    contract_status: ContractStatus = ContractStatus.PROSPECT
    contract_signed_on: Day | None = None
    contract_terminated_on: Day | None = Field(
        default=None, description="Defaults to today when the status is `terminated`"
    )
    forwarding_numbers: Numbers = []
    call_hours: Windows = []
    break_hours: Windows = []
    calendar_links: Links = []
    contact_persons: Contacts = []
    recipients: Recipients = []
    notes: Notes | None = None

    def to_profile(self) -> TenantProfile:
        """The domain profile these answers describe."""
        return TenantProfile.model_validate(self.model_dump())


class TenantUpdate(_Body):
    """A partial change: the fields given replace the stored ones; lists are replaced whole."""

    name: Name | None = None
    industry: Industry | None = None
    contract_status: ContractStatus | None = None
    contract_signed_on: Day | None = None
    contract_terminated_on: Day | None = None
    forwarding_numbers: Numbers | None = None
    call_hours: Windows | None = None
    break_hours: Windows | None = None
    calendar_links: Links | None = None
    contact_persons: Contacts | None = None
    recipients: Recipients | None = None
    notes: Notes | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_null_for_required(cls, value: Any, info: ValidationInfo) -> Any:
        nullable = ("contract_signed_on", "contract_terminated_on", "notes")
        if value is None and info.field_name not in nullable:
            raise ValueError("may not be null; send [] to empty a list")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the request set, in domain shape."""
        return self.model_dump(exclude_unset=True)


class TenantCreated(BaseModel):
    """Reply to an onboarding."""

    id: str


class TenantPublic(TenantProfile):
    """A tenant as operators and the client itself read it."""

    id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tenant: Tenant) -> TenantPublic:
        """The reply for a stored tenant."""
        return cls(
            **tenant.profile.model_dump(exclude={"secrecy_bound"}),
            id=tenant.tenant_id,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
        )


class CallerIn(_Body):
    """The person who called."""

    name: Name
    phone: Phone
    email: Email | None = None
    company: Text | None = None


class RecordingIn(_Body):
    """Whether the caller consented to a recording (R-REC-1), and where it lies if made."""

    consent: StrictBool
    url: RecordingUrl | None = None


class CallCreate(_Body):
    """A call as an agent captured it (R-CALL-1); `dialed_number` attributes it (R-CALL-2)."""

    tenant_id: Identifier | None = None
    dialed_number: BusinessPhone | None = Field(
        default=None, description="The forwarding number the call came in on"
    )
    caller: CallerIn
    concern: Concern
    contact_person: Name | None = None
    started_at: Moment = Field(description="ISO 8601 with a UTC offset")
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    forwarded_from: BusinessPhone | None = None
    recording: RecordingIn | None = None

    def details(self) -> CallDetails:
        """What the agent noted, in domain shape."""
        return CallDetails.model_validate(self.model_dump(exclude={"tenant_id", "dialed_number"}))


class CallAccepted(BaseModel):
    """Reply to a captured call."""

    id: str
    tenant_id: str
    received_at: datetime

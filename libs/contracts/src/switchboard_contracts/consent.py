"""Payload of `consent.changed`: who consented to what, when, how, to which wording (R-CON-3)."""

from enum import StrEnum

from pydantic import Field

from .common import Identifier, SubjectId, Timestamp
from .envelope import EventPayload
from .topics import CONSENT_CHANGED


class ConsentPurpose(StrEnum):
    """What a consent allows: notification (R-CON-2), recording (R-REC-1), marketing (R-CON-1)."""

    NOTIFICATION = "notification"
    RECORDING = "recording"
    MARKETING = "marketing"


class ConsentChannel(StrEnum):
    """The channel a consent covers; `none` for purposes without one, such as recording."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    NONE = "none"


class ConsentStatus(StrEnum):
    """Whether consent was given or taken back; a withdrawal acts from then on (R-CON-2)."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class ConsentMethod(StrEnum):
    """How the consent or withdrawal was declared (R-CON-3)."""

    WEB_FORM = "web_form"
    API = "api"
    VERBAL_DURING_CALL = "verbal_during_call"
    WRITTEN = "written"


class ConsentChanged(EventPayload):
    """A data subject granted or withdrew consent for one purpose on one channel."""

    topic = CONSENT_CHANGED
    version = 1

    consent_id: Identifier = Field(
        description="Id of this consent record in the registry that recorded it"
    )
    tenant_id: Identifier
    subject: SubjectId = Field(description="Who consented: a recipient address or a caller phone")
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    occurred_at: Timestamp = Field(description="When the subject declared it (not when recorded)")
    method: ConsentMethod
    text_version: Identifier = Field(
        description="Version of the consent wording the subject was shown or read out",
        examples=["recording-notice-de-2024-05"],
    )
    recorded_by: Identifier = Field(
        description="Who recorded it: the agent, the client user, or the system for API calls",
        examples=["agent-7", "client:kanzlei-meyer/admin", "system:intake"],
    )
    call_id: Identifier | None = Field(
        default=None, description="The call during which consent was given, for recordings"
    )

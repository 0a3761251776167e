"""Payload of `call.received`: a call captured by an agent at intake (R-CALL-1, R-REC-1)."""

from pydantic import Field

from .common import E164, Caller, ContractModel, Count, Identifier, LongText, Name, Timestamp
from .envelope import EventPayload
from .topics import CALL_RECEIVED


class RecordingRef(ContractModel):
    """Whether the caller consented to a recording, and where it lies if one was made."""

    consent: bool
    url: str | None = Field(default=None, max_length=2000)


class CallReceived(EventPayload):
    """A captured call, as intake accepted it."""

    topic = CALL_RECEIVED
    version = 1

    call_id: Identifier
    tenant_id: Identifier
    agent_id: Identifier = Field(description="The secretary who took the call (token subject)")
    caller: Caller
    concern: LongText = Field(description='What the caller wants ("Anliegen")')
    contact_person: Name | None = Field(
        default=None, description='Whom the caller asked for ("Ansprechpartner")'
    )
    started_at: Timestamp
    duration_seconds: Count | None = None
    forwarded_from: E164 | None = None
    dialed_number: E164 | None = None
    recording: RecordingRef | None = None
    received_at: Timestamp

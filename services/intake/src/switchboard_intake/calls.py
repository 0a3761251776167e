"""What a call is (R-CALL-1) and the rules for capturing one: attribution, consent, timing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard_contracts import Event, make_event
from switchboard_contracts.calls import CallReceived, RecordingRef
from switchboard_contracts.common import (
    E164,
    Caller,
    Identifier,
    LongText,
    Name,
    SubjectId,
    SubjectKind,
)
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.tenants import ContractStatus
from switchboard_platform.errors import Conflict, Unprocessable
from switchboard_platform.retention_participant import Tombstone

from .domain import EVENT_SOURCE, DataCategory

CATEGORY = DataCategory.CALL_DATA
CLOCK_SKEW = timedelta(minutes=5)
"""How far a call's start may lie ahead of our clock: agents' clocks drift a little."""


class CallDetails(BaseModel):
    """What the agent noted about a call."""

    model_config = ConfigDict(frozen=True)

    caller: Caller
    concern: LongText
    contact_person: Name | None = None
    started_at: AwareDatetime
    duration_seconds: int | None = Field(default=None, ge=0)
    forwarded_from: E164 | None = None
    recording: RecordingRef | None = None


class Call(CallDetails):
    """A captured call, attributed to its tenant."""

    call_id: Identifier
    tenant_id: Identifier
    agent_id: Identifier
    dialed_number: E164 | None = None
    received_at: AwareDatetime


@dataclass(frozen=True, slots=True)
class RetryKey:
    """An agent's Idempotency-Key for one capture: what it stands for and until when."""

    key: str
    fingerprint: str
    expires_at: datetime


PERSONAL_FIELDS = (
    "caller",
    "concern",
    "contact_person",
    "recording",
    "forwarded_from",
    "duration_seconds",
)
"""What a call record holds of its caller and their call: gone once the client deleted the
call's note (R-NOTE-2) or the caller's data was erased (R-DSR-17); the record keeps its ids,
retry key and retention clock."""


FORGOTTEN = Tombstone(removes=PERSONAL_FIELDS, marks=lambda now: {"forgotten_at": now})
"""What a call record becomes when its note is deleted or its caller erased."""


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A call as stored, with the fingerprint and expiry of the retry key it holds, if any;
    `call` is None once its details were forgotten (see `PERSONAL_FIELDS`)."""

    call: Call | None
    fingerprint: str | None
    expires_at: datetime | None


def retry_key(
    agent_id: str, key: str, request: dict[str, Any], received_at: datetime, keep: timedelta
) -> RetryKey:
    """The retry key of `agent_id`'s capture `request`: reused only for the same request.

    The fingerprint is a SHA-256 of the request in canonical JSON (the IETF
    idempotency-key draft's "payload fingerprint"): a key sent again with another body is
    refused, never answered with the first call.
    """
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return RetryKey(f"{agent_id}:{key}", digest, received_at + keep)


def check_retry(stored: StoredCall, retry: RetryKey) -> Call:
    """The first call, for a retry of the same request; Unprocessable for another request,
    Conflict when the call's details are gone (its note deleted, its caller erased): the
    call was recorded, and recording it again would bring them back."""
    if stored.fingerprint != retry.fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was used for a different request; use a new key",
            field="header.Idempotency-Key",
        )
    if stored.call is None:
        raise Conflict(
            "this call was recorded, and its note has been deleted since (or the caller's "
            "data erased): it is not recorded again"
        )
    return stored.call


def without_recording(call: Call) -> Call:
    """The call once the caller withdrew their recording consent (R-REC-1): the reference
    to the recording goes, the record that consent was given during the call stays."""
    if call.recording is None:
        return call
    return call.model_copy(update={"recording": call.recording.model_copy(update={"url": None})})


def check_details(details: CallDetails, received_at: datetime) -> None:
    """Refuse a recording without consent (R-REC-1) and a call that starts in the future."""
    recording = details.recording
    if recording is not None and recording.url is not None and not recording.consent:
        raise Unprocessable(
            "a recording is only allowed with the caller's prior consent (R-REC-1)",
            field="recording.url",
        )
    if details.started_at > received_at + CLOCK_SKEW:
        raise Unprocessable("a call cannot start in the future", field="started_at")


def check_accepts_calls(status: ContractStatus, field: str) -> None:
    """A terminated client gave no instruction to process calls any more (Art. 28)."""
    if status is ContractStatus.TERMINATED:
        raise Unprocessable("the tenant's contract is terminated", field=field)


def received_event(call: Call) -> Event[CallReceived]:
    """The `call.received` event of a captured call."""
    payload = CallReceived(**call.model_dump())
    return make_event(payload, tenant_id=call.tenant_id, source=EVENT_SOURCE, subject=call.call_id)


def consent_events(call: Call, notice_version: str) -> list[Event[Any]]:
    """The caller's recording consent as a `consent.changed` record (R-REC-1, R-CON-3)."""
    if call.recording is None or not call.recording.consent:
        return []
    payload = ConsentChanged(
        consent_id=f"recording-{call.call_id}",
        tenant_id=call.tenant_id,
        subject=SubjectId(kind=SubjectKind.PHONE, value=call.caller.phone),
        purpose=ConsentPurpose.RECORDING,
        channel=ConsentChannel.NONE,
        status=ConsentStatus.GRANTED,
        occurred_at=call.started_at,
        method=ConsentMethod.VERBAL_DURING_CALL,
        text_version=notice_version,
        recorded_by=call.agent_id,
        call_id=call.call_id,
    )
    return [
        make_event(payload, tenant_id=call.tenant_id, source=EVENT_SOURCE, subject=call.call_id)
    ]

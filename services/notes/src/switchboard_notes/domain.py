"""What a call note and a rating are, and the rules about them (no I/O)."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from switchboard_contracts.calls import CallReceived, RecordingRef
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import Caller, SubjectId
from switchboard_contracts.notes import DeletionReason
from switchboard_platform.subjects import subject_ids

_NOTE_NAMESPACE = uuid.UUID("6f1c0a52-5d7e-4c36-9a55-6c1f0f3c9b10")


class TenantMismatch(ValueError):
    """The event's envelope and its payload name different tenants: refuse, never guess."""


def _nfc(text: str | None) -> str | None:
    return None if text is None else unicodedata.normalize("NFC", text)


def searchable(call: CallReceived) -> tuple[Caller, str, str | None]:
    """Caller, concern and contact person in NFC, so a search finds them however typed."""
    caller = call.caller.model_copy(
        update={"name": _nfc(call.caller.name), "company": _nfc(call.caller.company)}
    )
    return caller, _nfc(call.concern) or "", _nfc(call.contact_person)


def note_id_for(call_id: str) -> str:
    """A call's note id: derived from the call id, so a redelivered call maps to the same note."""
    return str(uuid.uuid5(_NOTE_NAMESPACE, call_id))


@dataclass(frozen=True, slots=True)
class Note:
    """The call note the client receives (R-CALL-1)."""

    id: str
    call_id: str
    tenant_id: str
    agent_id: str
    caller: Caller
    concern: str
    contact_person: str | None
    started_at: datetime
    duration_seconds: int | None
    forwarded_from: str | None
    dialed_number: str | None
    recording: RecordingRef | None
    created_at: datetime
    category: DataCategory = DataCategory.CALL_DATA

    @property
    def retention_from(self) -> datetime:
        """The retention clock of call data starts with the call (R-RET-1)."""
        return self.started_at

    @classmethod
    def from_call(cls, call: CallReceived, *, envelope_tenant: str, now: datetime) -> Note:
        """Take the note of a captured call."""
        if call.tenant_id != envelope_tenant:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        caller, concern, contact_person = searchable(call)
        return cls(
            id=note_id_for(call.call_id),
            call_id=call.call_id,
            tenant_id=call.tenant_id,
            agent_id=call.agent_id,
            caller=caller,
            concern=concern,
            contact_person=contact_person,
            started_at=call.started_at,
            duration_seconds=call.duration_seconds,
            forwarded_from=call.forwarded_from,
            dialed_number=call.dialed_number,
            recording=call.recording,
            created_at=now,
        )

    @property
    def has_recording(self) -> bool:
        """Whether the note refers to a recording of the call."""
        return self.recording is not None and bool(self.recording.url)

    def caller_ids(self) -> list[SubjectId]:
        """The identifiers of the caller, as data-subject requests and consents name them."""
        return subject_ids(phone=self.caller.phone, email=self.caller.email, name=self.caller.name)

    def without_recording(self) -> Note:
        """The note once the caller withdrew their recording consent (R-REC-1): the
        recording's reference goes, the record that consent was given stays."""
        if self.recording is None:
            return self
        return replace(self, recording=self.recording.model_copy(update={"url": None}))


PERSONAL_FIELDS = (
    "caller",
    "concern",
    "contact_person",
    "recording",
    "forwarded_from",
    "dialed_number",
    "duration_seconds",
)
"""What a deleted note no longer holds; its tombstone keeps only ids and times."""


def stored_caller_ids(note: Mapping[str, Any]) -> list[SubjectId]:
    """The identifiers of a stored note's caller (none for a deleted note's tombstone)."""
    caller = note.get("caller") or {}
    return subject_ids(
        phone=caller.get("phone"), email=caller.get("email"), name=caller.get("name")
    )


def withheld(note: Mapping[str, Any]) -> dict[str, Any]:
    """A note whose caller restricted the processing of their data (R-DSR-18): it is kept,
    and shown to the client as having been taken, without anything it holds about them."""
    return {k: v for k, v in note.items() if k not in PERSONAL_FIELDS} | {"restricted": True}


@dataclass(frozen=True, slots=True)
class Deletion:
    """The removal of a note: by whom, when, why (R-NOTE-2, R-RET-6)."""

    note_id: str
    tenant_id: str
    deleted_by: str
    deleted_at: datetime
    reason: DeletionReason = DeletionReason.CLIENT_REQUEST


@dataclass(frozen=True, slots=True)
class Rating:
    """A client's feedback on one note; the latest rating of a note replaces the earlier one.

    It is kept inside the note, so it shares the note's data category and retention.
    """

    note_id: str
    call_id: str
    tenant_id: str
    agent_id: str
    score: int
    comment: str | None
    rated_by: str
    rated_at: datetime

    def __post_init__(self) -> None:
        if not 1 <= self.score <= 5:
            raise ValueError("score must be between 1 and 5")


@dataclass(frozen=True, slots=True)
class NoteFilter:
    """What a client asks of its note list."""

    tenant_id: str
    started_from: datetime | None = None
    started_to: datetime | None = None
    contact_person: str | None = None
    text: str | None = None
    limit: int = 50
    after: tuple[datetime, str] | None = None
    excluded_callers: tuple[SubjectId, ...] = ()
    """Callers whose notes the list leaves out: a search's, while they are restricted."""

    @property
    def searched(self) -> bool:
        """Whether the list looks into what notes hold (text, contact person)."""
        return self.text is not None or self.contact_person is not None


@dataclass(frozen=True, slots=True)
class AgentRatings:
    """How clients rated one secretary: count, average and recent comments (R-NOTE-3)."""

    agent_id: str
    count: int
    average: float
    recent_comments: list[dict[str, Any]]

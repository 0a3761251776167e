"""Payloads of `note.created`, `note.deleted` and `note.rated` (R-CALL-1, R-NOTE-2, R-NOTE-3)."""

from enum import StrEnum

from pydantic import Field

from .calls import RecordingRef
from .common import E164, Caller, Count, Identifier, LongText, Name, Timestamp
from .envelope import EventPayload
from .topics import NOTE_CREATED, NOTE_DELETED, NOTE_RATED


class NoteCreated(EventPayload):
    """A call note now exists for the tenant."""

    topic = NOTE_CREATED
    version = 1

    note_id: Identifier
    call_id: Identifier
    tenant_id: Identifier
    agent_id: Identifier
    caller: Caller
    concern: LongText
    contact_person: Name | None = None
    started_at: Timestamp
    duration_seconds: Count | None = None
    forwarded_from: E164 | None = None
    recording: RecordingRef | None = None
    created_at: Timestamp


class DeletionReason(StrEnum):
    """Why a note was removed."""

    CLIENT_REQUEST = "client_request"
    RETENTION = "retention"
    DATA_SUBJECT_REQUEST = "data_subject_request"


class NoteDeleted(EventPayload):
    """A note was removed; every copy elsewhere must go too."""

    topic = NOTE_DELETED
    version = 1

    note_id: Identifier
    call_id: Identifier
    tenant_id: Identifier
    deleted_at: Timestamp
    deleted_by: Identifier
    reason: DeletionReason


class NoteRated(EventPayload):
    """The client rated a note; ratings steer which secretary serves them."""

    topic = NOTE_RATED
    version = 1

    note_id: Identifier
    call_id: Identifier
    tenant_id: Identifier
    agent_id: Identifier
    score: int = Field(ge=1, le=5)
    comment: LongText | None = None
    rated_at: Timestamp
    rated_by: Identifier

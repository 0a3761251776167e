"""HTTP request and response shapes of the notes API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from switchboard_contracts.calls import RecordingRef
from switchboard_contracts.common import Caller
from switchboard_platform.inputs import clean_text
from switchboard_platform.mongo import Document, as_utc

UtcTime = Annotated[datetime, AfterValidator(as_utc)]
"""A stored time, answered with its UTC offset whatever the server kept."""


class NotePublic(BaseModel):
    """A call note as the client sees it."""

    id: str
    call_id: str
    tenant_id: str
    agent_id: str
    restricted: bool = Field(
        default=False,
        description="The caller restricted the processing of their data (Art. 18 GDPR, "
        "R-DSR-18): the note is kept, and shown without caller, concern, contact person, "
        "recording, numbers and duration until the restriction is lifted",
    )
    caller: Caller | None = Field(default=None, description="Absent only on a restricted note")
    concern: str | None = Field(default=None, description="Absent only on a restricted note")
    contact_person: str | None = None
    started_at: UtcTime
    duration_seconds: int | None = None
    forwarded_from: str | None = None
    dialed_number: str | None = None
    recording: RecordingRef | None = None
    created_at: UtcTime

    @classmethod
    def from_document(cls, doc: Document) -> NotePublic:
        """Shape a stored note for the API."""
        return cls.model_validate({**doc, "id": doc["_id"]})


class NotePage(BaseModel):
    """One page of notes, newest call first; pass `next_cursor` back to get the next page."""

    items: list[NotePublic]
    next_cursor: str | None


Comment = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(clean_text)
]
"""A rating's comment: free text as a note's concern is, at most 2,000 characters."""


class RatingCreate(BaseModel):
    """The client's feedback on a note."""

    score: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: Comment | None = None


class RatingPublic(BaseModel):
    """A stored rating."""

    note_id: str
    score: int
    comment: str | None
    rated_at: UtcTime


class RecentComment(BaseModel):
    """One recent comment a client left about an agent's note."""

    note_id: str
    tenant_id: str
    score: int
    comment: str
    rated_at: UtcTime


class AgentRatingsPublic(BaseModel):
    """How clients rate one secretary."""

    agent_id: str
    count: int
    average: float
    recent_comments: list[RecentComment]

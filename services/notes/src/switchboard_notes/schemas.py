"""HTTP request and response shapes of the notes API."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from switchboard_contracts.calls import RecordingRef
from switchboard_contracts.common import Caller
from switchboard_platform.errors import Unprocessable
from switchboard_platform.mongo import Document


class NotePublic(BaseModel):
    """A call note as the client sees it."""

    id: str
    call_id: str
    tenant_id: str
    agent_id: str
    caller: Caller
    concern: str
    contact_person: str | None = None
    started_at: datetime
    duration_seconds: int | None = None
    forwarded_from: str | None = None
    dialed_number: str | None = None
    recording: RecordingRef | None = None
    created_at: datetime

    @classmethod
    def from_document(cls, doc: Document) -> NotePublic:
        """Shape a stored note for the API."""
        return cls.model_validate({**doc, "id": doc["_id"]})


class NotePage(BaseModel):
    """One page of notes, newest call first; pass `next_cursor` back to get the next page."""

    items: list[NotePublic]
    next_cursor: str | None


class RatingCreate(BaseModel):
    """The client's feedback on a note."""

    score: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: str | None = Field(default=None, max_length=2000)


class RatingPublic(BaseModel):
    """A stored rating."""

    note_id: str
    score: int
    comment: str | None
    rated_at: datetime


class RecentComment(BaseModel):
    """One recent comment a client left about an agent's note."""

    note_id: str
    tenant_id: str
    score: int
    comment: str
    rated_at: datetime


class AgentRatingsPublic(BaseModel):
    """How clients rate one secretary."""

    agent_id: str
    count: int
    average: float
    recent_comments: list[RecentComment]


def encode_cursor(position: tuple[datetime, str] | None) -> str | None:
    """Opaque cursor for the position after a page."""
    if position is None:
        return None
    raw = json.dumps([position[0].isoformat(), position[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The position a cursor stands for; 422 naming `cursor` when it is not one of ours."""
    if cursor is None:
        return None
    try:
        started, note_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        parsed: Any = (datetime.fromisoformat(started), str(note_id))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise Unprocessable("invalid cursor", field="query.cursor") from exc
    return parsed  # type: ignore[no-any-return]

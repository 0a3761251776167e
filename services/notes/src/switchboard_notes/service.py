"""Use cases of the notes service: record a call as a note, list, delete, rate, report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from switchboard_contracts import Event, make_event
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.notes import NoteCreated, NoteDeleted, NoteRated
from switchboard_platform.errors import Conflict, NotFound
from switchboard_platform.flows import CAPTURE_TO_NOTE, observe_flow
from switchboard_platform.mongo import Document
from switchboard_platform.subjects import (
    RecordingWithdrawn,
    RestrictedSubjects,
    never_withdrawn,
    nobody_restricted,
)

from .domain import (
    AgentRatings,
    Deletion,
    Note,
    NoteFilter,
    Rating,
    stored_caller_ids,
    withheld,
)
from .repository import NotesRepository

SOURCE = "/switchboard/notes"
RESTRICTED_NOTE = (
    "the caller restricted the processing of their data: the note is kept, unchanged, until "
    "the restriction is lifted"
)
SEARCH_PAGES_READ = 5
"""How many pages a search reads at most to fill one whose notes a restriction left out."""
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def note_created(note: Note) -> Event[NoteCreated]:
    """The `note.created` event announcing `note`."""
    payload = NoteCreated(
        note_id=note.id,
        call_id=note.call_id,
        tenant_id=note.tenant_id,
        agent_id=note.agent_id,
        caller=note.caller,
        concern=note.concern,
        contact_person=note.contact_person,
        started_at=note.started_at,
        duration_seconds=note.duration_seconds,
        forwarded_from=note.forwarded_from,
        recording=note.recording,
        created_at=note.created_at,
    )
    return make_event(payload, tenant_id=note.tenant_id, source=SOURCE, subject=note.id)


class NotesService:
    """What the notes service does, independent of HTTP and Kafka."""

    def __init__(
        self,
        repository: NotesRepository,
        *,
        events_written: Callable[[], None] = lambda: None,
        clock: Clock = _utcnow,
        recording_withdrawn: RecordingWithdrawn = never_withdrawn,
        restricted_subjects: RestrictedSubjects = nobody_restricted,
    ) -> None:
        self._repo = repository
        self._events_written = events_written
        self._clock = clock
        self._recording_withdrawn = recording_withdrawn
        self._restricted = restricted_subjects

    async def record_call(self, event: Event[CallReceived]) -> bool:
        """Store the note of a received call exactly once; True if it is new.

        A recording whose consent was withdrawn before the call reached notes (the
        withdrawal travels on another topic) is left out of the note and its event (R-REC-1).
        """
        call = Note.from_call(event.data, envelope_tenant=event.tenantid, now=self._clock())
        withdrawn = await self._withdrawn(call)
        note = call.without_recording() if withdrawn else call
        created = await self._repo.insert_new(note, [note_created(note)])
        if created:
            self._events_written()
            observe_flow(CAPTURE_TO_NOTE, event.data.received_at, ended=note.created_at)
        # The stored note may still hold the recording: a withdrawal kept between the check
        # and the insert, or one that a redelivery finds after the first delivery stored the
        # note. The unset repeats harmlessly. (A `note.created` already written keeps the
        # reference, as `call.received` does on Kafka; no consumer stores it.)
        if (withdrawn and not created) or (not withdrawn and await self._withdrawn(call)):
            await self._repo.drop_recording(note.tenant_id, note.id)
        return created

    async def _withdrawn(self, note: Note) -> bool:
        if not note.has_recording:
            return False
        return await self._recording_withdrawn(
            note.tenant_id, note.caller_ids(), note.call_id, note.started_at
        )

    async def get(self, tenant_id: str, note_id: str) -> Document:
        """One live note of the tenant (withheld if its caller restricted processing), or
        NotFound."""
        doc = await self._repo.get(tenant_id, note_id)
        if doc is None:
            raise NotFound("note not found")
        restricted = await self._restricted(tenant_id)
        return withheld(doc) if restricted.covers(stored_caller_ids(doc)) else doc

    async def list_notes(
        self, query: NoteFilter
    ) -> tuple[list[Document], tuple[datetime, str] | None]:
        """A page of notes and the position after its last one (None on the last page).

        Notes of a caller who restricted processing (R-DSR-18) are withheld; a search by
        contact person or text leaves them out, since it looked into what they hold, and
        reads on (a few pages at most) to fill the page.
        """
        restricted = await self._restricted(query.tenant_id)
        searched = query.searched
        if searched:  # left out by the database, so a page and its cursor show none of them
            query = replace(query, excluded_callers=tuple(restricted.identifiers()))
        shown: list[Document] = []
        after = query.after
        for _ in range(SEARCH_PAGES_READ):  # the check below is a second guard (spellings)
            docs = await self._repo.page(replace(query, after=after))
            for doc in docs:
                if restricted.covers(stored_caller_ids(doc)):
                    if searched:
                        continue
                    doc = withheld(doc)
                shown.append(doc)
                if len(shown) == query.limit:
                    last = doc is docs[-1] and len(docs) < query.limit
                    return shown, None if last else self._repo.cursor_position(doc)
            if len(docs) < query.limit:
                return shown, None
            after = self._repo.cursor_position(docs[-1])
        return shown, after

    async def delete(self, tenant_id: str, note_id: str, deleted_by: str) -> None:
        """Remove a note (R-NOTE-2): personal data goes, `note.deleted` announces it."""
        deletion = Deletion(
            note_id=note_id, tenant_id=tenant_id, deleted_by=deleted_by, deleted_at=self._clock()
        )
        existing = await self._repo.get(tenant_id, note_id)
        if existing is None:
            raise NotFound("note not found")
        if (await self._restricted(tenant_id)).covers(stored_caller_ids(existing)):
            # Art. 18: a restriction is often asked for instead of erasure, to keep the data
            raise Conflict(RESTRICTED_NOTE)
        payload = NoteDeleted(
            note_id=note_id,
            call_id=existing["call_id"],
            tenant_id=tenant_id,
            deleted_at=deletion.deleted_at,
            deleted_by=deleted_by,
            reason=deletion.reason,
        )
        event = make_event(payload, tenant_id=tenant_id, source=SOURCE, subject=note_id)
        if await self._repo.mark_deleted(deletion, [event]) is None:
            raise NotFound("note not found")
        self._events_written()

    async def rate(
        self, tenant_id: str, note_id: str, *, score: int, comment: str | None, rated_by: str
    ) -> Rating:
        """Record the client's feedback on a note (R-NOTE-3) and announce it; a restricted
        caller's note is not processed, rated neither (409)."""
        note = await self.get(tenant_id, note_id)
        if note.get("restricted"):
            raise Conflict(RESTRICTED_NOTE)
        rating = Rating(
            note_id=note_id,
            call_id=note["call_id"],
            tenant_id=tenant_id,
            agent_id=note["agent_id"],
            score=score,
            comment=comment,
            rated_by=rated_by,
            rated_at=self._clock(),
        )
        payload = NoteRated(
            note_id=note_id,
            call_id=rating.call_id,
            tenant_id=tenant_id,
            agent_id=rating.agent_id,
            score=score,
            comment=comment,
            rated_at=rating.rated_at,
            rated_by=rated_by,
        )
        event = make_event(payload, tenant_id=tenant_id, source=SOURCE, subject=note_id)
        if not await self._repo.save_rating(rating, [event]):
            raise NotFound("note not found")  # deleted meanwhile
        self._events_written()
        return rating

    async def agent_ratings(self, agent_id: str | None = None) -> list[AgentRatings]:
        """Ratings per agent across tenants, for allocating secretaries."""
        return await self._repo.agent_ratings(agent_id)

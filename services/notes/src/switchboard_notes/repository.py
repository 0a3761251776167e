"""The notes collection: indexes and queries (PyMongo async), every read scoped to a tenant.

A note's rating lives inside the note document, so deleting a note (which forgets the
rating's comment) and rating a note (which must not land on a deleted one) are each one
single-document write (docs/decisions/0006). Notes are ordered and paged by `started_ms`
(the call's start in epoch milliseconds) rather than by the `started_at` date: nx-27017
compares dates to the second, so two calls in one second would tie (a skipped or repeated
note when paging).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_platform.mongo import Document, MongoDatabase, all_of, as_utc
from switchboard_platform.outbox import (
    merge_updates,
    outbox_fields_excluded,
    outbox_update,
    with_outbox,
)
from switchboard_platform.tenancy import one_of_tenant, only_tenant, scoped

from .domain import PERSONAL_FIELDS, AgentRatings, Deletion, Note, NoteFilter, Rating

SERVICE = "notes"
NOTES = "notes"
RECENT_COMMENTS = 5
# A live note has no `deleted_at` (rather than a null one: nx-27017 mis-evaluates a null
# match combined with `$or`, and "missing" reads the same on MongoDB).
LIVE = {"$exists": False}
SEARCHED = ("caller.name", "caller.company", "caller.phone", "concern")

INDEXES: dict[str, Sequence[IndexModel]] = {
    NOTES: [
        IndexModel([("call_id", ASCENDING)], unique=True, name="one_note_per_call"),
        # (tenant, started_at) rather than (tenant, started_at, _id): nx-27017 cannot index
        # `_id` inside a compound index, and ties on started_at are rare enough to sort in memory.
        IndexModel(
            [("tenant_id", ASCENDING), ("started_ms", DESCENDING)], name="tenant_newest_first_ms"
        ),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
        IndexModel(
            [("agent_id", ASCENDING), ("rating.rated_at", DESCENDING)],
            name="agent_ratings",
            sparse=True,
        ),
    ],
}


def _note_document(note: Note) -> Document:
    return {
        "_id": note.id,
        "call_id": note.call_id,
        "tenant_id": note.tenant_id,
        "agent_id": note.agent_id,
        "caller": note.caller.model_dump(mode="json"),
        "concern": note.concern,
        "contact_person": note.contact_person,
        "started_at": note.started_at,
        "started_ms": epoch_ms(note.started_at),
        "duration_seconds": note.duration_seconds,
        "forwarded_from": note.forwarded_from,
        "dialed_number": note.dialed_number,
        "recording": note.recording.model_dump(mode="json") if note.recording else None,
        "created_at": note.created_at,
        "category": note.category,
        "retention_from": note.retention_from,
    }


def epoch_ms(moment: datetime) -> int:
    """A time as whole milliseconds since the epoch: what notes are ordered and paged by."""
    return int(moment.timestamp() * 1000)


def _guarded(doc: Document | None, tenant_id: str) -> Document | None:
    return one_of_tenant(doc, tenant_id, service=SERVICE, collection=NOTES)


class NotesRepository:
    """Stores notes with their ratings and outbox; every tenant query is scoped and guarded."""

    def __init__(self, db: MongoDatabase) -> None:
        self._notes = db[NOTES]

    async def insert_new(self, note: Note, events: Sequence[Event[Any]]) -> bool:
        """Store a note with its events; False if the call already has one (or a tombstone)."""
        try:
            await self._notes.insert_one(with_outbox(_note_document(note), events))
        except DuplicateKeyError:
            return False
        return True

    async def drop_recording(self, tenant_id: str, note_id: str) -> None:
        """Remove the reference to the call's recording from a note (R-REC-1)."""
        await self._notes.update_one(
            scoped(tenant_id, {"_id": note_id}), {"$unset": {"recording.url": ""}}
        )

    async def get(self, tenant_id: str, note_id: str) -> Document | None:
        """The live note `note_id` of `tenant_id`, or None."""
        doc = await self._notes.find_one(
            scoped(tenant_id, {"_id": note_id}, {"deleted_at": LIVE}), outbox_fields_excluded()
        )
        return _guarded(doc, tenant_id)

    async def page(self, query: NoteFilter) -> list[Document]:
        """Up to `query.limit` live notes, newest call first, after the cursor position."""
        clauses: list[Document] = [{"deleted_at": LIVE}]
        started: Document = {}
        if query.started_from is not None:
            started["$gte"] = epoch_ms(query.started_from)
        if query.started_to is not None:
            started["$lt"] = epoch_ms(query.started_to)
        if started:
            clauses.append({"started_ms": started})
        if query.contact_person:
            pattern = f"^{re.escape(query.contact_person)}$"
            clauses.append({"contact_person": {"$regex": pattern, "$options": "i"}})
        if query.text:
            pattern = re.escape(query.text)
            clauses.append({"$or": [{f: {"$regex": pattern, "$options": "i"}} for f in SEARCHED]})
        if query.excluded_callers:
            clauses.append({"$nor": [_caller_is(i) for i in query.excluded_callers]})
        if query.after is not None:
            after_ms, after_id = epoch_ms(query.after[0]), query.after[1]
            clauses.append(
                {
                    "$or": [
                        {"started_ms": {"$lt": after_ms}},
                        {"$and": [{"started_ms": after_ms}, {"_id": {"$lt": after_id}}]},
                    ]
                }
            )
        cursor = (
            self._notes.find(scoped(query.tenant_id, *clauses), outbox_fields_excluded())
            .sort([("started_ms", DESCENDING), ("_id", DESCENDING)])
            .limit(query.limit)
        )
        docs = [doc async for doc in cursor]
        return only_tenant(docs, query.tenant_id, service=SERVICE, collection=NOTES)

    async def mark_deleted(
        self, deletion: Deletion, events: Sequence[Event[Any]]
    ) -> Document | None:
        """Turn a live note into a tombstone without personal data; None if there is none.

        One write: the personal fields, the rating's comment and the `note.deleted` event.
        """
        update = merge_updates(
            {
                "$set": {
                    "deleted_at": deletion.deleted_at,
                    "deleted_by": deletion.deleted_by,
                    "deletion_reason": str(deletion.reason),
                },
                "$unset": {**dict.fromkeys(PERSONAL_FIELDS, ""), "rating.comment": ""},
            },
            outbox_update(events),
        )
        doc = await self._notes.find_one_and_update(
            scoped(deletion.tenant_id, {"_id": deletion.note_id}, {"deleted_at": LIVE}),
            update,
            projection={"_id": 1, "call_id": 1, "tenant_id": 1},
            return_document=ReturnDocument.BEFORE,
        )
        return _guarded(doc, deletion.tenant_id)

    async def save_rating(self, rating: Rating, events: Sequence[Event[Any]]) -> bool:
        """Store (or replace) the rating of a live note, with its events; False if none."""
        fields = {
            "score": rating.score,
            "comment": rating.comment,
            "rated_by": rating.rated_by,
            "rated_at": rating.rated_at,
        }
        result = await self._notes.update_one(
            scoped(rating.tenant_id, {"_id": rating.note_id}, {"deleted_at": LIVE}),
            merge_updates({"$set": {"rating": fields}}, outbox_update(events)),
        )
        return result.matched_count == 1

    async def agent_ratings(self, agent_id: str | None = None) -> list[AgentRatings]:
        """Count, average score and recent comments per agent, across tenants."""
        match: Document = {"rating.score": {"$exists": True}}
        if agent_id:
            match = all_of({"agent_id": agent_id}, match)
        stats = await self._notes.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": "$agent_id",
                        "count": {"$sum": 1},
                        "average": {"$avg": "$rating.score"},
                    }
                },
                {"$sort": {"_id": 1}},
            ]
        )
        result = []
        async for row in stats:
            result.append(
                AgentRatings(
                    agent_id=row["_id"],
                    count=row["count"],
                    average=round(float(row["average"]), 2),
                    recent_comments=await self._recent_comments(row["_id"]),
                )
            )
        return result

    async def _recent_comments(self, agent_id: str) -> list[Document]:
        cursor = (
            self._notes.find(
                all_of({"agent_id": agent_id}, {"rating.comment": {"$type": "string"}}),
                {"tenant_id": 1, "rating": 1},
            )
            .sort("rating.rated_at", DESCENDING)
            .limit(RECENT_COMMENTS)
        )
        comments = []
        async for doc in cursor:
            rating = doc.get("rating") or {}
            if isinstance(rating.get("comment"), str):  # checked here too (nx-27017)
                comments.append(
                    {
                        "note_id": doc["_id"],
                        "tenant_id": doc["tenant_id"],
                        "score": rating["score"],
                        "comment": rating["comment"],
                        "rated_at": as_utc(rating["rated_at"]),
                    }
                )
        return comments

    @staticmethod
    def cursor_position(doc: Document) -> tuple[datetime, str]:
        """Where the next page starts after `doc`."""
        moment = doc.get("started_ms")
        started = as_utc(doc["started_at"])
        if isinstance(moment, int):
            started = datetime.fromtimestamp(moment / 1000, tz=UTC)
        return started, doc["_id"]


def _caller_is(identifier: SubjectId) -> Document:
    """Notes whose caller has `identifier` as `subject_key` compares it: a phone exactly,
    an e-mail or a name ignoring case (and, for a name, how it is spaced)."""
    if identifier.kind is SubjectKind.PHONE:
        return {"caller.phone": identifier.value}
    if identifier.kind is SubjectKind.EMAIL:
        return {"caller.email": {"$regex": f"^{re.escape(identifier.value)}$", "$options": "i"}}
    words = r"\s+".join(re.escape(w) for w in identifier.value.split())
    return {"caller.name": {"$regex": f"^\\s*{words}\\s*$", "$options": "i"}}

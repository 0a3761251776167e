"""The notes and ratings collections: indexes and queries (motor)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event
from switchboard_platform.mongo import Document, MongoDatabase
from switchboard_platform.outbox import outbox_fields_excluded, outbox_update, with_outbox

from .domain import PERSONAL_FIELDS, AgentRatings, Deletion, Note, NoteFilter, Rating

NOTES = "notes"
RATINGS = "ratings"
RECENT_COMMENTS = 5
# A live note has no `deleted_at` (rather than a null one: nx-27017 mis-evaluates a null
# match combined with `$or`, and "missing" reads the same on MongoDB).
LIVE = {"$exists": False}

INDEXES: dict[str, Sequence[IndexModel]] = {
    NOTES: [
        IndexModel([("call_id", ASCENDING)], unique=True, name="one_note_per_call"),
        # (tenant, started_at) rather than (tenant, started_at, _id): nx-27017 cannot index
        # `_id` inside a compound index, and ties on started_at are rare enough to sort in memory.
        IndexModel(
            [("tenant_id", ASCENDING), ("started_at", DESCENDING)], name="tenant_newest_first"
        ),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    ],
    RATINGS: [
        IndexModel([("agent_id", ASCENDING), ("rated_at", DESCENDING)], name="agent_recent"),
        IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
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
        "duration_seconds": note.duration_seconds,
        "forwarded_from": note.forwarded_from,
        "dialed_number": note.dialed_number,
        "recording": note.recording.model_dump(mode="json") if note.recording else None,
        "created_at": note.created_at,
        "category": note.category,
        "retention_from": note.retention_from,
    }


class NotesRepository:
    """Stores notes (with their outbox) and ratings; every query is scoped to a tenant."""

    def __init__(self, db: MongoDatabase) -> None:
        self._notes = db[NOTES]
        self._ratings = db[RATINGS]

    async def insert_new(self, note: Note, events: Sequence[Event[Any]]) -> bool:
        """Store a note with its events; False if the call already has one (or a tombstone)."""
        try:
            await self._notes.insert_one(with_outbox(_note_document(note), events))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, tenant_id: str, note_id: str) -> Document | None:
        """The live note `note_id` of `tenant_id`, or None."""
        return await self._notes.find_one(
            {"_id": note_id, "tenant_id": tenant_id, "deleted_at": LIVE}, outbox_fields_excluded()
        )

    async def page(self, query: NoteFilter) -> list[Document]:
        """Up to `query.limit` live notes, newest call first, after the cursor position."""
        selector: Document = {"tenant_id": query.tenant_id, "deleted_at": LIVE}
        started: Document = {}
        if query.started_from is not None:
            started["$gte"] = query.started_from
        if query.started_to is not None:
            started["$lt"] = query.started_to
        if started:
            selector["started_at"] = started
        if query.contact_person:
            pattern = f"^{re.escape(query.contact_person)}$"
            selector["contact_person"] = {"$regex": pattern, "$options": "i"}
        alternatives: list[list[Document]] = []
        if query.text:
            pattern = re.escape(query.text)
            alternatives.append(
                [
                    {field: {"$regex": pattern, "$options": "i"}}
                    for field in ("caller.name", "caller.company", "caller.phone", "concern")
                ]
            )
        if query.after is not None:
            after_started, after_id = query.after
            alternatives.append(
                [
                    {"started_at": {"$lt": after_started}},
                    {"started_at": after_started, "_id": {"$lt": after_id}},
                ]
            )
        if len(alternatives) == 1:
            selector["$or"] = alternatives[0]
        elif alternatives:
            selector["$and"] = [{"$or": a} for a in alternatives]
        cursor = (
            self._notes.find(selector, outbox_fields_excluded())
            .sort([("started_at", DESCENDING), ("_id", DESCENDING)])
            .limit(query.limit)
        )
        return [doc async for doc in cursor]

    async def mark_deleted(
        self, deletion: Deletion, events: Sequence[Event[Any]]
    ) -> Document | None:
        """Turn a live note into a tombstone without personal data; None if there is none."""
        update: Document = {
            "$set": {
                "deleted_at": deletion.deleted_at,
                "deleted_by": deletion.deleted_by,
                "deletion_reason": str(deletion.reason),
            },
            "$unset": dict.fromkeys(PERSONAL_FIELDS, ""),
            **outbox_update(events),
        }
        return await self._notes.find_one_and_update(
            {"_id": deletion.note_id, "tenant_id": deletion.tenant_id, "deleted_at": LIVE},
            update,
            projection={"_id": 1, "call_id": 1},
            return_document=ReturnDocument.BEFORE,
        )

    async def forget_rating_comment(self, note_id: str) -> None:
        """A deleted note's rating keeps its score for statistics but loses its free text."""
        await self._ratings.update_one({"_id": note_id}, {"$unset": {"comment": ""}})

    async def save_rating(self, rating: Rating, events: Sequence[Event[Any]]) -> None:
        """Store (or replace) the rating of a note, with its events."""
        fields = {
            "tenant_id": rating.tenant_id,
            "call_id": rating.call_id,
            "agent_id": rating.agent_id,
            "score": rating.score,
            "comment": rating.comment,
            "rated_by": rating.rated_by,
            "rated_at": rating.rated_at,
            "category": rating.category,
            "retention_from": rating.note_started_at,
        }
        try:
            await self._ratings.insert_one(with_outbox({"_id": rating.note_id, **fields}, events))
        except DuplicateKeyError:
            await self._ratings.update_one(
                {"_id": rating.note_id}, {"$set": fields, **outbox_update(events)}
            )

    async def agent_ratings(self, agent_id: str | None = None) -> list[AgentRatings]:
        """Count, average score and recent comments per agent, across tenants."""
        match: Document = {"agent_id": agent_id} if agent_id else {}
        stats = self._ratings.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": "$agent_id",
                        "count": {"$sum": 1},
                        "average": {"$avg": "$score"},
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
            self._ratings.find(
                {"agent_id": agent_id, "comment": {"$ne": None}},
                {"tenant_id": 1, "score": 1, "comment": 1, "rated_at": 1},
            )
            .sort("rated_at", DESCENDING)
            .limit(RECENT_COMMENTS)
        )
        # checked here as well: nx-27017 lets `$ne: None` match a missing comment
        return [
            {"note_id": doc.pop("_id"), **doc}
            async for doc in cursor
            if isinstance(doc.get("comment"), str)
        ]

    @staticmethod
    def cursor_position(doc: Document) -> tuple[datetime, str]:
        """Where the next page starts after `doc`."""
        return doc["started_at"], doc["_id"]

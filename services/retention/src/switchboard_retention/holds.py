"""The legal holds collection (R-RET-5): placed, listed and lifted explicitly by operators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from pymongo import ASCENDING, IndexModel

from switchboard_contracts.common import SubjectId
from switchboard_platform.mongo import Document, MongoDatabase, all_of

from .domain import Hold

HOLDS = "holds"
INDEXES: dict[str, Sequence[IndexModel]] = {
    HOLDS: [IndexModel([("lifted", ASCENDING)], name="active")],
}


def _document(hold: Hold, placed_by: str, placed_at: datetime) -> Document:
    return {
        "_id": hold.id,
        "reason": hold.reason,
        "until": hold.until.isoformat(),
        "tenant_id": hold.tenant_id,
        "subject": hold.subject.model_dump(mode="json") if hold.subject else None,
        "category": hold.category,
        "placed_by": placed_by,
        "placed_at": placed_at,
        "lifted": False,
    }


def hold_of(doc: Document) -> Hold:
    """The hold a stored document describes."""
    subject = doc.get("subject")
    return Hold(
        id=doc["_id"],
        reason=doc["reason"],
        until=date.fromisoformat(doc["until"]),
        tenant_id=doc.get("tenant_id"),
        subject=SubjectId.model_validate(subject) if subject else None,
        category=doc.get("category"),
    )


class HoldStore:
    """Stores holds; a lifted hold stays listed with who lifted it and when."""

    def __init__(self, db: MongoDatabase) -> None:
        self._holds = db[HOLDS]

    async def place(self, hold: Hold, placed_by: str, placed_at: datetime) -> Document:
        """Store a new hold."""
        doc = _document(hold, placed_by, placed_at)
        await self._holds.insert_one(doc)
        return doc

    async def listed(self, *, include_lifted: bool = False) -> list[Document]:
        """Holds in the order they were placed (lifted ones too, if asked)."""
        query: Document = {} if include_lifted else {"lifted": False}
        return [doc async for doc in self._holds.find(query).sort("placed_at", 1)]

    async def active(self, day: date) -> list[Hold]:
        """The holds not lifted and still in force on `day`."""
        holds = [hold_of(doc) async for doc in self._holds.find({"lifted": False})]
        return [h for h in holds if h.active_on(day)]

    async def lift(self, hold_id: str, lifted_by: str, lifted_at: datetime) -> bool:
        """Lift an active hold; False if there is none by that id."""
        result = await self._holds.update_one(
            all_of({"_id": hold_id}, {"lifted": False}),
            {
                "$set": {
                    "lifted": True,
                    "lifted_by": lifted_by,
                    "lifted_at": lifted_at.isoformat(),
                }
            },
        )
        return result.matched_count == 1

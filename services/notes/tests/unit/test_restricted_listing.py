"""notes' list of a restricted caller's notes (R-DSR-18), without servers: the repository is
a fake that pages through a fixed list, newest first, as the real one does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from switchboard_notes.domain import NoteFilter
from switchboard_notes.repository import NotesRepository
from switchboard_notes.service import NotesService
from switchboard_platform.subjects import Restricted

START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
RESTRICTED = "+4915200000001"


class _Pages:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs  # newest first
        self.reads = 0

    async def page(self, query: NoteFilter) -> list[dict[str, Any]]:
        self.reads += 1
        after = [d for d in self.docs if query.after is None or self.position(d) < query.after]
        return after[: query.limit]

    @staticmethod
    def position(doc: dict[str, Any]) -> tuple[datetime, str]:
        return doc["started_at"], doc["_id"]

    cursor_position = position


def _notes(phones: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"n{i:02d}",
            "tenant_id": "t1",
            "started_at": START - timedelta(minutes=i),
            "caller": {"name": "Erika", "phone": phone},
            "concern": "Rückruf",
        }
        for i, phone in enumerate(phones)
    ]


def _service(pages: _Pages) -> NotesService:
    async def restricted(tenant_id: str) -> Restricted:
        return Restricted(frozenset({f"phone:{RESTRICTED}"}))

    return NotesService(cast(NotesRepository, pages), restricted_subjects=restricted)


async def _all(service: NotesService, **query: Any) -> list[list[str]]:
    pages, after = [], None
    while True:
        docs, after = await service.list_notes(NoteFilter(tenant_id="t1", after=after, **query))
        pages.append([d["_id"] for d in docs])
        if after is None:
            return pages


async def test_r_dsr_18_a_search_fills_its_pages_past_a_restricted_callers_notes() -> None:
    other = "+4915200000002"
    pages = _Pages(_notes([other, *[RESTRICTED] * 5, other, other, RESTRICTED, other]))
    listed = await _all(_service(pages), text="Erika", limit=2)
    assert listed == [["n00", "n06"], ["n07", "n09"]]


async def test_r_dsr_18_a_list_without_search_shows_them_withheld_in_place() -> None:
    pages = _Pages(_notes([RESTRICTED, "+4915200000002", RESTRICTED]))
    docs, after = await _service(pages).list_notes(NoteFilter(tenant_id="t1", limit=2))
    assert [(d["_id"], d.get("restricted", False), "caller" in d) for d in docs] == [
        ("n00", True, False),
        ("n01", False, True),
    ]
    assert after == (START - timedelta(minutes=1), "n01")
    rest, end = await _service(pages).list_notes(NoteFilter(tenant_id="t1", limit=2, after=after))
    assert [d["_id"] for d in rest] == ["n02"]
    assert end is None

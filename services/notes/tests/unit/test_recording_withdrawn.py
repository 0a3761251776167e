"""notes' use of a withdrawn recording consent (R-REC-1), without servers: the repository is
a fake that records what the service asked of it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from switchboard_contracts import Event, make_event
from switchboard_contracts.calls import CallReceived, RecordingRef
from switchboard_contracts.common import Caller, SubjectId
from switchboard_notes.domain import Note
from switchboard_notes.repository import NotesRepository
from switchboard_notes.service import NotesService

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class _Repository:
    def __init__(self, *, new: bool = True) -> None:
        self.inserted: list[tuple[Note, Sequence[Event[Any]]]] = []
        self.dropped: list[tuple[str, str]] = []
        self._new = new

    async def insert_new(self, note: Note, events: Sequence[Event[Any]]) -> bool:
        self.inserted.append((note, events))
        return self._new

    async def drop_recording(self, tenant_id: str, note_id: str) -> None:
        self.dropped.append((tenant_id, note_id))


def _call(url: str | None = "https://rec.example/a.ogg") -> Event[CallReceived]:
    call = CallReceived(
        call_id="call-1",
        tenant_id="t1",
        agent_id="agent-7",
        caller=Caller(name="Erika Mustermann", phone="+4915211014450"),
        concern="Rückruf",
        started_at=NOW - timedelta(minutes=5),
        received_at=NOW,
        recording=RecordingRef(consent=True, url=url),
    )
    return make_event(call, tenant_id="t1", source="/test")


def _service(repo: _Repository, answers: list[bool]) -> tuple[NotesService, list[list[str]]]:
    asked: list[list[str]] = []

    async def withdrawn(
        tenant_id: str, caller: Iterable[SubjectId], call_id: str, started_at: datetime
    ) -> bool:
        asked.append([f"{i.kind}:{i.value}" for i in caller])
        return answers.pop(0)

    service = NotesService(
        cast(NotesRepository, repo), clock=lambda: NOW, recording_withdrawn=withdrawn
    )
    return service, asked


async def test_r_rec_1_a_withdrawn_recording_is_left_out_of_the_note_and_its_event() -> None:
    repo = _Repository()
    service, asked = _service(repo, [True, True])
    assert await service.record_call(_call())
    [(note, [event])] = repo.inserted
    assert note.recording == RecordingRef(consent=True, url=None)
    assert event.data.recording == RecordingRef(consent=True, url=None)  # type: ignore[attr-defined]
    assert asked[0] == ["phone:+4915211014450", "name:Erika Mustermann"]


async def test_r_rec_1_a_withdrawal_kept_while_the_note_was_written_clears_it_after() -> None:
    repo = _Repository()
    service, _ = _service(repo, [False, True])
    assert await service.record_call(_call())
    [(note, _)] = repo.inserted
    assert note.recording is not None
    assert note.recording.url
    assert repo.dropped == [("t1", note.id)]


async def test_a_call_without_recording_asks_nothing() -> None:
    repo = _Repository()
    service, asked = _service(repo, [])
    assert await service.record_call(_call(url=None))
    assert asked == []
    assert repo.dropped == []


async def test_r_rec_1_a_redelivered_call_clears_a_recording_its_first_delivery_left() -> None:
    """The first delivery stored the note, then failed (a crash, a database blip) before it
    asked again; the withdrawal had been kept meanwhile. The redelivery clears it."""
    repo = _Repository(new=False)
    service, _ = _service(repo, [True, True])
    assert not await service.record_call(_call())
    [(note, _)] = repo.inserted
    assert repo.dropped == [("t1", note.id)]

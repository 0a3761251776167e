"""The notes service: call notes from `call.received`, read, searched, deleted and rated."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_contracts.notes import NoteCreated, NoteDeleted, NoteRated
from switchboard_platform.retention_participant import RetentionParticipant
from switchboard_platform.runtime import ServiceRuntime

from . import api
from .config import NotesSettings
from .handlers import register_handlers
from .inventory import INVENTORY
from .repository import INDEXES, NOTES, NotesRepository
from .service import NotesService


def create_app(settings: NotesSettings | None = None) -> FastAPI:
    """Build the notes app; clients connect when it starts."""
    settings = settings or NotesSettings()
    participant = RetentionParticipant(INVENTORY)
    runtime = ServiceRuntime(
        "notes",
        settings,
        **participant.options(
            indexes=INDEXES,
            outbox_collections=(NOTES,),
            publishes=(NoteCreated, NoteDeleted, NoteRated),
        ),
    )
    participant.attach(runtime)  # retention.due, dsr.requested (R-RET-*, R-DSR-*)
    app: FastAPI

    def service() -> NotesService:
        notes_service: NotesService = app.state.notes_service
        return notes_service

    async def on_startup(rt: ServiceRuntime) -> None:
        repository = NotesRepository(rt.db)
        app.state.notes_service = NotesService(
            repository,
            events_written=rt.outbox_notifier(NOTES),
            recording_withdrawn=participant.recording_withdrawn,
            restricted_subjects=participant.restricted_subjects,
        )
        app.state.note_cursors = rt.cursors("notes")

    register_handlers(runtime, service)
    app = runtime.create_app(
        title="Switchboard notes",
        description="Call notes for clients: list, search, delete, rate (R-CALL-1, R-NOTE-2/3).",
        routers=[api.router],
        on_startup=on_startup,
    )
    app.state.retention_participant = participant
    return app

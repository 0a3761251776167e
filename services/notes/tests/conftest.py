"""Fixtures of the notes service tests: a running notes app on the session's real servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings


@pytest.fixture(scope="module")
def notes_settings(servers: ServerEndpoints) -> NotesSettings:
    """Settings pointing at the session's broker and a database of this test module."""
    return service_settings(NotesSettings, servers, f"notes_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
async def notes_client(notes_settings: NotesSettings) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of a started notes app (consumers and outbox relay running)."""
    async with running_app(create_app(notes_settings)) as client:
        yield client

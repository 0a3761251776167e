"""Fixtures of the notes service tests: a running notes app on the session's real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import uuid

import httpx
import pytest

from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints


@pytest.fixture(scope="module")
def notes_settings(servers: ServerEndpoints) -> NotesSettings:
    """Settings pointing at the session's broker and a database of this test module."""
    return NotesSettings(
        kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
        mongodb_url=servers.mongodb_url,
        mongodb_database=f"notes_{uuid.uuid4().hex[:12]}",
        kafka_fetch_max_wait_ms=20,
        outbox_poll_interval_s=0.2,
        environment="test",
    )


@pytest.fixture(scope="module")
async def notes_client(notes_settings: NotesSettings) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of a started notes app (consumers and outbox relay running)."""
    async with running_app(create_app(notes_settings)) as client:
        yield client

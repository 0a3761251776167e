"""Fixtures of the retention tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from switchboard_platform.testing.pytest_plugin import ServerEndpoints


@pytest.fixture(scope="module")
async def mongo(servers: ServerEndpoints) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """A client to look into the services' databases directly."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    yield client
    await client.close()

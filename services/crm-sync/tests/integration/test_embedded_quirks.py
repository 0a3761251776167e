"""Where nx-27017 (the embedded server) differs from MongoDB, as crm-sync found it.

crm-sync keeps the MongoDB-correct form that holds on both (a numeric `created_ts` for the
transfer log's keyset paging); the `xfail` shows the difference and passes on MongoDB.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from switchboard_platform.mongo import MongoDatabase, create_mongo_client
from switchboard_platform.testing.pytest_plugin import MODE_VARIABLE, ServerEndpoints

EMBEDDED = os.environ.get(MODE_VARIABLE, "embedded") == "embedded"
BASE = datetime(2026, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC)
OFFSETS_MS = (0, 1, 300, 1000)


@pytest.fixture
async def quirks_db(servers: ServerEndpoints) -> AsyncIterator[MongoDatabase]:
    client = create_mongo_client(servers.mongodb_url, app_name="quirks")
    db = client[f"quirks_{uuid.uuid4().hex[:8]}"]
    await db.q.insert_many(
        [
            {"_id": f"ms{o}", "at": BASE + timedelta(milliseconds=o), "ts": o / 1000}
            for o in OFFSETS_MS
        ]
    )
    yield db
    await client.close()


@pytest.mark.xfail(
    EMBEDDED,
    reason="nx-27017: equality on a datetime matches every datetime of the same second",
    strict=True,
)
async def test_datetime_equality_matches_exactly_that_millisecond(quirks_db: MongoDatabase) -> None:
    found = [d["_id"] async for d in quirks_db.q.find({"at": BASE})]
    assert found == ["ms0"]


async def test_number_equality_and_datetime_in_match_exactly_on_every_server(
    quirks_db: MongoDatabase,
) -> None:
    assert [d["_id"] async for d in quirks_db.q.find({"ts": 0.3})] == ["ms300"]
    assert [d["_id"] async for d in quirks_db.q.find({"at": {"$in": [BASE]}})] == ["ms0"]

"""MongoDB access with PyMongo's native asyncio client: factory, indexes, transient errors.

PyMongo's `AsyncMongoClient` replaces motor (deprecated upstream, and a thread-pool hop per
operation): docs/decisions/0007-pymongo-async-client.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from .metrics import DB_COMMANDS

Document = dict[str, Any]
MongoClient = AsyncMongoClient[Document]
MongoDatabase = AsyncDatabase[Document]
MongoCollection = AsyncCollection[Document]


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a client sends (`switchboard_db_commands_total`).

    What a call costs the database is round trips: on a server that charges per message
    (nx-27017 here, any server across a network) they bound the throughput, and the
    benchmark reports them per call. Collection names are the service's own, so the series
    stay few. Opt-in (`MONGODB_COMMAND_METRICS`): with any listener, PyMongo builds a
    started and a succeeded event per command, about 0.07 ms of CPU (measured on a 0.5 ms
    insert against nx-27017).
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._children: dict[tuple[str, str], Any] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get("collection" if name == "getMore" else name)
        key = (name, target if isinstance(target, str) else "")
        child = self._children.get(key)
        if child is None:
            child = DB_COMMANDS.labels(service=self._service, command=key[0], collection=key[1])
            self._children[key] = child
        child.inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def create_mongo_client(url: str, *, app_name: str, count_commands: bool = False) -> MongoClient:
    """Open (lazily) a client: timezone-aware datetimes, short server selection for readiness;
    with `count_commands`, its commands are counted under the service `app_name`."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        retryWrites=True,
        event_listeners=[CommandCounter(app_name)] if count_commands else [],
    )


CLOSE_TIMEOUT_S = 1.0


async def close_mongo_client(client: MongoClient) -> None:
    """Close `client`, giving its goodbye to the server (`endSessions`) `CLOSE_TIMEOUT_S`.

    Without a server (a shutdown during an outage) PyMongo would wait a whole server
    selection for that goodbye, which the server does not need: it ends idle sessions
    itself after 30 minutes. The pools and monitors are closed either way.
    """
    with pymongo.timeout(CLOSE_TIMEOUT_S):
        await client.close()


async def ensure_indexes(db: MongoDatabase, indexes: Mapping[str, Sequence[IndexModel]]) -> None:
    """Create each collection's indexes; a no-op for those that already exist."""
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


def all_of(*clauses: Document) -> Document:
    """A filter matching documents that satisfy every clause: flat when it can be, else `$and`.

    The same on MongoDB; on nx-27017 a top-level `$and` uses no index (a find by `_id` under
    `$and` scanned 10,000 documents: 160 ms instead of 1 ms), so distinct plain fields are
    merged into one flat filter, and only clauses that repeat a field or hold an operator
    such as `$or` are joined by `$and`.
    """
    parts = [c for c in clauses if c]
    if len(parts) == 1:
        return dict(parts[0])
    keys = [key for part in parts for key in part]
    if len(keys) == len(set(keys)) and not any(key.startswith("$") for key in keys):
        return {key: value for part in parts for key, value in part.items()}
    return {"$and": parts}


def is_transient(exc: BaseException) -> bool:
    """True for database errors worth retrying: lost connections, elections, timeouts."""
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, OperationFailure):
        return exc.has_error_label("RetryableWriteError") or exc.code in (91, 189, 10107, 13435)
    return isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError")


def as_utc(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime.

    nx-27017 (the embedded dev server) stores a top-level `$set` datetime as a naive ISO
    string; MongoDB keeps it a date. Both mean UTC.
    """
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def ids_matching(
    collection: MongoCollection, selector: Document, *, limit: int = 0
) -> list[Any]:
    """The `_id`s of the documents `selector` matches (at most `limit`, 0: all)."""
    cursor = collection.find(selector, {"_id": 1})
    if limit:
        cursor = cursor.limit(limit)
    return [doc["_id"] async for doc in cursor]


async def delete_matching(
    collection: MongoCollection, selector: Document, *, chunk: int = 1000
) -> int:
    """`delete_many(selector)` that holds on nx-27017 too; returns how many were deleted.

    nx-27017 (the embedded server) applies a multi-document write whose filter uses `$in` on
    a field other than `_id` to the wrong documents (shown by the xfail test in
    `libs/platform/tests/test_embedded_quirks.py`). Selecting the ids first, then deleting
    by `_id` alone, is correct on both servers.
    """
    deleted = 0
    seen: set[Any] = set()
    while ids := [
        i for i in await ids_matching(collection, selector, limit=chunk) if i not in seen
    ]:
        seen.update(ids)
        result = await collection.delete_many({"_id": {"$in": ids}})
        deleted += result.deleted_count
    return deleted


async def update_matching(
    collection: MongoCollection, selector: Document, update: Document, *, chunk: int = 1000
) -> int:
    """`update_many(selector, update)` that holds on nx-27017 too (see `delete_matching`).

    The ids are selected once, then updated by `_id` in chunks; returns how many changed.
    """
    ids = await ids_matching(collection, selector)
    modified = 0
    for start in range(0, len(ids), chunk):
        result = await collection.update_many({"_id": {"$in": ids[start : start + chunk]}}, update)
        modified += result.modified_count
    return modified

"""MongoDB access with motor: the client factory, idempotent indexes, transient-error test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo import IndexModel
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

Document = dict[str, Any]
MongoClient = AsyncIOMotorClient[Document]
MongoDatabase = AsyncIOMotorDatabase[Document]


def create_mongo_client(url: str, *, app_name: str) -> MongoClient:
    """Open (lazily) a client: timezone-aware datetimes, short server selection for readiness."""
    return AsyncIOMotorClient(
        url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        retryWrites=True,
    )


async def ensure_indexes(db: MongoDatabase, indexes: Mapping[str, Sequence[IndexModel]]) -> None:
    """Create each collection's indexes; a no-op for those that already exist."""
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


def is_transient(exc: BaseException) -> bool:
    """True for database errors worth retrying: lost connections, elections, timeouts."""
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, OperationFailure):
        return exc.has_error_label("RetryableWriteError") or exc.code in (91, 189, 10107, 13435)
    return isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError")

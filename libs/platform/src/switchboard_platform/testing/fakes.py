"""In-memory stand-ins for fast unit tests: an async face on mongomock, and a fake broker.

They let the outbox relay and the consumer pipeline be tested in milliseconds, beside (never
instead of) the integration tests against real servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import mongomock
from pymongo.errors import AutoReconnect


class _AsyncCursor:
    """The chainable part of a cursor, iterated asynchronously."""

    def __init__(self, cursor: Any, database: FakeDatabase) -> None:
        self._cursor = cursor
        self._database = database

    def sort(self, *args: Any, **kwargs: Any) -> _AsyncCursor:
        self._cursor = self._cursor.sort(*args, **kwargs)
        return self

    def limit(self, count: int) -> _AsyncCursor:
        self._cursor = self._cursor.limit(count)
        return self

    def skip(self, count: int) -> _AsyncCursor:
        self._cursor = self._cursor.skip(count)
        return self

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        await self._database.answered()
        for doc in self._cursor:
            await asyncio.sleep(0)  # let other tasks run, as a real round trip would
            yield doc

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        await self._database.answered()
        return list(self._cursor)[:length] if length else list(self._cursor)


@dataclass
class BulkResult:
    """What `bulk_write` reports."""

    matched_count: int = 0
    modified_count: int = 0
    inserted_count: int = 0
    deleted_count: int = 0


class FakeCollection:
    """A mongomock collection behind PyMongo's async method names."""

    def __init__(self, collection: Any, database: FakeDatabase) -> None:
        self._collection = collection
        self._database = database

    def _reachable(self) -> None:
        if self._database.unreachable:
            raise AutoReconnect("fake database: connection closed")

    def find(self, *args: Any, **kwargs: Any) -> _AsyncCursor:
        self._reachable()
        return _AsyncCursor(self._collection.find(*args, **kwargs), self._database)

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> _AsyncCursor:
        self._reachable()
        await self._database.answered()
        return _AsyncCursor(self._collection.aggregate(pipeline), self._database)

    async def bulk_write(self, requests: list[Any], ordered: bool = True) -> BulkResult:
        """UpdateOne/InsertOne/DeleteOne one by one (mongomock's bulk API lags PyMongo's)."""
        self._reachable()
        await self._database.answered()
        result = BulkResult()
        for request in requests:
            await asyncio.sleep(0)
            name = type(request).__name__
            if name == "UpdateOne":
                done = self._collection.update_one(
                    request._filter, request._doc, upsert=request._upsert
                )
                result.matched_count += done.matched_count
                result.modified_count += done.modified_count
            elif name == "InsertOne":
                self._collection.insert_one(request._doc)
                result.inserted_count += 1
            elif name == "DeleteOne":
                result.deleted_count += self._collection.delete_one(request._filter).deleted_count
            else:
                raise NotImplementedError(name)
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._collection, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            self._reachable()
            await self._database.answered()
            return method(*args, **kwargs)

        return call


class FakeDatabase:
    """A mongomock database handing out `FakeCollection`s; one per test."""

    def __init__(self, name: str = "test") -> None:
        self._db: Any = mongomock.MongoClient(tz_aware=True)[name]
        self.unreachable = False
        """Set to make every operation fail as PyMongo's do while the server is away."""
        self._answering = asyncio.Event()
        self._answering.set()

    def stall(self) -> None:
        """Make every operation wait for `resume()`: a server that stopped answering, whose
        operations PyMongo holds until a timeout."""
        self._answering.clear()

    def resume(self) -> None:
        """Answer again: the stalled operations go on."""
        self._answering.set()

    async def answered(self) -> None:
        """Wait while the database is stalled."""
        await self._answering.wait()

    def __getitem__(self, name: str) -> FakeCollection:
        return FakeCollection(self._db[name], self)

    def __getattr__(self, name: str) -> FakeCollection:
        return self[name]


@dataclass
class Published:
    """One record the fake broker accepted."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]


@dataclass
class FakeBroker:
    """Accepts `publish(..., no_confirm=True)` like FastStream's; `fail` decides refusals.

    `fail(value, topic)` returns an exception for that record, or None to accept it. The
    exception is raised by `publish` itself, as aiokafka's client-side checks (record too
    large) do, unless `fail_late`: then the returned future fails, as a broker's refusal does.
    """

    published: list[Published] = field(default_factory=list)
    fail: Callable[[bytes, str], BaseException | None] = lambda value, topic: None
    fail_late: bool = False

    async def publish(
        self,
        value: bytes,
        topic: str,
        *,
        key: bytes | None = None,
        headers: dict[str, str] | None = None,
        no_confirm: bool = False,
    ) -> asyncio.Future[None]:
        await asyncio.sleep(0)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        error = self.fail(value, topic)
        if error is not None and not self.fail_late:
            raise error
        if error is not None:
            future.set_exception(error)
        else:
            self.published.append(Published(topic, key, value, dict(headers or {})))
            future.set_result(None)
        return future

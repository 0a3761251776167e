"""One service's process-wide resources and its FastAPI app, opened and closed in the lifespan.

A service's `main.create_app()` builds a `ServiceRuntime`, registers its event handlers and
HTTP routers on it, and returns `runtime.create_app()`. Nothing connects at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from faststream.specification import AsyncAPI
from pymongo import IndexModel

from switchboard_contracts import EventPayload

from .auth import TokenVerifier
from .consumer import DeadLetters, EventHandler, EventPipeline, subscribe
from .errors import install_error_handlers
from .health import Health
from .http import install_http
from .kafka import create_broker
from .mongo import MongoClient, MongoDatabase, create_mongo_client, ensure_indexes
from .outbox import OutboxRelay, outbox_indexes
from .settings import ServiceSettings
from .telemetry import instrument_app, kafka_telemetry_middleware, setup_telemetry

log = logging.getLogger(__name__)
P = TypeVar("P", bound=EventPayload)
StartupHook = Callable[["ServiceRuntime"], Awaitable[None]]


class ServiceRuntime:
    """Broker, database, outbox relay and health of one running service."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        version: str = "0.1.0",
        indexes: Mapping[str, Sequence[IndexModel]] | None = None,
        outbox_collections: Sequence[str] = (),
        publishes: Sequence[type[EventPayload]] = (),
    ) -> None:
        self.name = name
        self.version = version
        self.settings = settings
        self.tracer_provider = setup_telemetry(name, version)
        self.broker = create_broker(
            settings,
            client_id=f"switchboard-{name}",
            middlewares=[kafka_telemetry_middleware(self.tracer_provider)],
        )
        self.health = Health()
        self.dead_letters = DeadLetters(self.broker, name)
        self._indexes = dict(indexes or {})
        for collection in outbox_collections:
            self._indexes[collection] = [*self._indexes.get(collection, ()), *outbox_indexes()]
        self._outbox_collections = tuple(outbox_collections)
        self._mongo: MongoClient | None = None
        self._relay: OutboxRelay | None = None
        for payload in publishes:
            self.broker.publisher(
                payload.topic,
                title=f"{payload.topic}:{name}",
                schema=payload,
                description=payload.__doc__,
            )

    @property
    def db(self) -> MongoDatabase:
        """The service's own database; available once the app has started."""
        if self._mongo is None:
            raise RuntimeError(f"{self.name}: database used before start-up")
        return self._mongo[self.settings.mongodb_database or self.name]

    def notify_outbox(self) -> None:
        """Tell the relay that new events are waiting (it also polls on its own)."""
        if self._relay is not None:
            self._relay.notify()

    def consume(
        self, payload_type: type[P], handler: EventHandler[P], *, group_id: str = ""
    ) -> None:
        """Handle each event of the payload's topic with `handler`, in consumer group `group_id`."""
        prefix = self.settings.kafka_consumer_group_prefix or self.name
        pipeline = EventPipeline(
            service=self.name,
            payload_type=payload_type,
            handler=handler,
            dead_letters=self.dead_letters,
            health=self.health,
        )
        subscribe(
            self.broker,
            pipeline,
            group_id=group_id or f"{prefix}.{payload_type.topic}",
            settings=self.settings,
        )

    def asyncapi_json(self) -> str:
        """The AsyncAPI 3 document of the topics this service consumes and publishes."""
        spec = AsyncAPI(self.broker, title=f"Switchboard {self.name}", version=self.version)
        return spec.to_specification().to_json()

    async def _ping_mongo(self) -> bool:
        if self._mongo is None:
            return False
        await self._mongo.admin.command("ping")
        return True

    async def _ping_kafka(self) -> bool:
        return await self.broker.ping(timeout=2.0)

    async def _relay_ok(self) -> bool:
        return self._relay is None or self._relay.healthy

    @asynccontextmanager
    async def running(self, on_startup: StartupHook | None = None) -> AsyncIterator[None]:
        """Open the database, start the broker and relay; on exit stop them gracefully.

        Shutdown order: stop consuming (in-flight messages finish and commit), flush the
        outbox, close the producer, close the database.
        """
        self._mongo = create_mongo_client(self.settings.mongodb_url, app_name=self.name)
        await ensure_indexes(self.db, self._indexes)
        self.health.add_probe("mongodb", self._ping_mongo, needed_to_serve_http=True)
        self.health.add_probe("kafka", self._ping_kafka)
        if on_startup is not None:
            await on_startup(self)
        await self.broker.connect()
        if self._outbox_collections:
            self._relay = OutboxRelay(
                self.db,
                self._outbox_collections,
                service=self.name,
                broker=self.broker,
                poll_interval_s=self.settings.outbox_poll_interval_s,
            )
            self.health.add_probe("outbox", self._relay_ok)
            self._relay.start()
        await self.broker.start()
        log.info("service started", extra={"service_name": self.name})
        try:
            yield
        finally:
            for subscriber in self.broker.subscribers:
                await subscriber.stop()
            if self._relay is not None:
                await self._relay.stop()
                self._relay = None
            await self.broker.stop()
            self._mongo.close()
            self._mongo = None
            log.info("service stopped", extra={"service_name": self.name})

    def create_app(
        self,
        *,
        title: str,
        description: str = "",
        routers: Sequence[APIRouter] = (),
        on_startup: StartupHook | None = None,
    ) -> FastAPI:
        """The service's FastAPI app: its routers plus health, metrics, docs and error handling."""

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
            async with self.running(on_startup):
                yield {}

        app = FastAPI(title=title, description=description, version=self.version, lifespan=lifespan)
        app.state.runtime = self
        app.state.token_verifier = TokenVerifier(self.settings)
        install_error_handlers(app)
        install_http(app, self)
        for router in routers:
            app.include_router(router)
        instrument_app(app, self.tracer_provider)
        return app

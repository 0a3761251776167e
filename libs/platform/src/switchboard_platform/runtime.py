"""One service's process-wide resources and its FastAPI app, opened and closed in the lifespan.

A service's `main.create_app()` builds a `ServiceRuntime`, registers its event handlers and
HTTP routers on it, and returns `runtime.create_app()`. Nothing connects at import time.
Every rule a service must not forget — tenant access, error shapes, limits, safe headers,
signed cursors, dead letters, the outbox — comes with the runtime (docs/decisions/0010).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pymongo import IndexModel

from switchboard_contracts import EventPayload

from .auth import TokenVerifier
from .consumer import DeadLetters, EventHandler, EventPipeline
from .cursors import CursorCodec
from .errors import ERROR_RESPONSES, install_error_handlers
from .health import Health
from .http import install_http
from .kafka import Producer
from .mongo import MongoClient, MongoDatabase, create_mongo_client, ensure_indexes
from .outbox import outbox_indexes
from .outbox_relay import OutboxRelay
from .settings import ServiceSettings
from .telemetry import (
    http_telemetry,
    instrument_app,
    instrument_mongo,
    setup_telemetry,
    tracing_enabled,
)
from .topic_consumer import TopicConsumer

log = logging.getLogger(__name__)
P = TypeVar("P", bound=EventPayload)
StartupHook = Callable[["ServiceRuntime"], Awaitable[None]]
ShutdownHook = Callable[["ServiceRuntime"], Awaitable[None]]


class ServiceRuntime:
    """Broker, database, consumers, outbox relay and health of one running service."""

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
        self.tracing = tracing_enabled(settings.tracing)
        self.tracer_provider = setup_telemetry(name, version)
        tracer = self.tracer_provider.get_tracer("switchboard.kafka") if self.tracing else None
        self.broker = Producer(settings, client_id=f"switchboard-{name}", tracer=tracer)
        self._publishes = tuple(publishes)
        self.health = Health()
        self.dead_letters = DeadLetters(self.broker, name)
        self._indexes = dict(indexes or {})
        for collection in outbox_collections:
            self._indexes[collection] = [*self._indexes.get(collection, ()), *outbox_indexes()]
        self._outbox_collections = tuple(outbox_collections)
        self._mongo: MongoClient | None = None
        self._relay: OutboxRelay | None = None
        self._pipelines: list[tuple[EventPipeline[Any], str]] = []
        self._consumers: list[TopicConsumer] = []
        self._cursor_secret = settings.cursor_secret.get_secret_value().encode()

    @property
    def db(self) -> MongoDatabase:
        """The service's own database; available once the app has started."""
        if self._mongo is None:
            raise RuntimeError(f"{self.name}: database used before start-up")
        return self._mongo[self.settings.mongodb_database or self.name]

    def cursors(self, listing: str) -> CursorCodec:
        """The signer of page cursors for one listing (e.g. `notes`) of this service."""
        return CursorCodec(self._cursor_secret, purpose=f"{self.name}:{listing}")

    def notify_outbox(self, *collections: str) -> None:
        """Tell the relay that new events wait (in `collections`, if named; it also polls)."""
        if self._relay is not None:
            self._relay.notify(*collections)

    def consume(
        self, payload_type: type[P], handler: EventHandler[P], *, group_id: str = ""
    ) -> None:
        """Handle each event of the payload's topic with `handler`, in consumer group `group_id`."""
        prefix = self.settings.kafka_consumer_group_prefix or self.name
        group = group_id or f"{prefix}.{payload_type.topic}"
        pipeline = EventPipeline(
            service=self.name,
            payload_type=payload_type,
            handler=handler,
            dead_letters=self.dead_letters,
            health=self.health,
            tracer=self.tracer_provider.get_tracer("switchboard.consumer")
            if self.tracing
            else None,
        )
        self._pipelines.append((pipeline, group))

    def asyncapi_json(self) -> str:
        """The AsyncAPI 3 document of the topics this service consumes and publishes."""
        from .asyncapi import asyncapi_document  # FastStream: imported only when asked

        subscriptions = [(p.payload_type, group) for p, group in self._pipelines]
        return asyncapi_document(
            self.name, self.version, self.settings, self._publishes, subscriptions
        )

    async def _ping_mongo(self) -> bool:
        if self._mongo is None:
            return False
        await self._mongo.admin.command("ping")
        return True

    async def _ping_kafka(self) -> bool:
        return await self.broker.ping(timeout=2.0)

    async def _relay_ok(self) -> bool:
        return self._relay is None or self._relay.healthy

    async def _consumers_ok(self) -> bool:
        return all(c.running for c in self._consumers)

    @asynccontextmanager
    async def running(
        self, on_startup: StartupHook | None = None, on_shutdown: ShutdownHook | None = None
    ) -> AsyncIterator[None]:
        """Open the database, start the broker, consumers and relay; on exit stop them.

        Shutdown order: the service's own `on_shutdown` (its background loops), stop
        consuming (in-flight messages finish and commit), flush the outbox and hand its lease
        on, close the producer, close the database.
        """
        if self.tracing:
            instrument_mongo(self.tracer_provider)
        self._mongo = create_mongo_client(self.settings.mongodb_url, app_name=self.name)
        await ensure_indexes(self.db, self._indexes)
        self.health.add_probe("mongodb", self._ping_mongo, needed_to_serve_http=True)
        self.health.add_probe("kafka", self._ping_kafka)
        if on_startup is not None:
            await on_startup(self)
        await self.broker.start()
        if self._outbox_collections:
            self._relay = OutboxRelay(
                self.db,
                self._outbox_collections,
                service=self.name,
                broker=self.broker,
                poll_interval_s=self.settings.outbox_poll_interval_s,
                lease_s=self.settings.outbox_lease_s,
            )
            self.health.add_probe("outbox", self._relay_ok)
            self.health.add_info("outbox", self._relay.info)
            self._relay.start()
        for pipeline, group in self._pipelines:
            consumer = TopicConsumer(
                pipeline,
                group_id=group,
                settings=self.settings,
                client_id=f"switchboard-{self.name}",
            )
            await consumer.start()  # joins in the background: HTTP serves meanwhile
            self._consumers.append(consumer)
        if self._consumers:
            self.health.add_probe("consumers", self._consumers_ok)
        log.info("service started", extra={"service_name": self.name})
        try:
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown(self)
            for consumer in self._consumers:
                await consumer.stop()
            self._consumers.clear()
            if self._relay is not None:
                await self._relay.stop()
                self._relay = None
            await self.broker.stop()
            await self._mongo.close()
            self._mongo = None
            log.info("service stopped", extra={"service_name": self.name})

    def create_app(
        self,
        *,
        title: str,
        description: str = "",
        routers: Sequence[APIRouter] = (),
        on_startup: StartupHook | None = None,
        on_shutdown: ShutdownHook | None = None,
    ) -> FastAPI:
        """The service's FastAPI app: its routers plus health, metrics, docs and error handling.

        `on_startup` runs once the database is open (before consumers start); `on_shutdown`
        first thing when the service stops (stop the service's own background loops there).
        """

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
            async with self.running(on_startup, on_shutdown):
                yield {}

        app = FastAPI(
            title=title,
            description=description,
            version=self.version,
            lifespan=lifespan,
            telemetry=http_telemetry(self.tracer_provider, tracing=self.tracing),
        )
        app.state.runtime = self
        app.state.token_verifier = TokenVerifier(self.settings)
        install_error_handlers(app)
        for router in routers:
            app.include_router(router)
        document_errors(app)
        instrument_app(app)
        install_http(app, self)  # outermost: limits apply before anything else runs
        return app


def document_errors(app: FastAPI) -> None:
    """Refuse to start an app whose API routes do not document the shared error answers.

    Routers made with `http.api_router()` carry them; the OpenAPI document must list what
    a caller can get (Schemathesis checks every answer against it).
    """
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v"):
            missing = [code for code in ERROR_RESPONSES if code not in route.responses]
            if missing:
                raise RuntimeError(
                    f"{route.path}: build its router with switchboard_platform.http.api_router() "
                    f"(undocumented error answers {missing})"
                )

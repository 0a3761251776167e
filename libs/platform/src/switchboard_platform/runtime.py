"""One service's process-wide resources and its FastAPI app, opened and closed in the lifespan.

A service's `main.create_app()` builds a `ServiceRuntime`, registers its event handlers and
HTTP routers on it, and returns `runtime.create_app()`. Nothing connects at import time.
Every rule a service must not forget — tenant access, error shapes, limits, safe headers,
signed cursors, dead letters, the outbox — comes with the runtime (docs/decisions/0010).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from pymongo import IndexModel

from switchboard_contracts import EventPayload
from switchboard_contracts.topics import dead_letter_topic

from .auth import TokenVerifier
from .consumer import DeadLetters, EventHandler, EventPipeline
from .cursors import CursorCodec
from .dead_letter_depth import DeadLetterDepth
from .errors import ERROR_RESPONSES, install_error_handlers
from .health import Health
from .http import MAX_ID_LENGTH, install_http
from .kafka import Producer
from .metrics import initialise_series
from .mongo import (
    MongoClient,
    MongoDatabase,
    close_mongo_client,
    create_mongo_client,
    ensure_indexes,
)
from .outbox import outbox_indexes
from .outbox_relay import OutboxRelay, RelayLease, replica_lease_owner
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
RETRY_MAX_S = 10.0


async def _until_done(what: str, attempt: Callable[[], Awaitable[Any]]) -> None:
    """Call `attempt` until it succeeds, backing off up to 10 s; log the first failure."""
    backoff, failures = 0.5, 0
    while True:
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            if failures == 1 or failures % 10 == 0:
                log.warning(
                    "start-up step failed; retrying",
                    extra={
                        "step": what,
                        "failures": failures,
                        "error_kind": type(exc).__name__,
                        "error": str(exc)[:300],
                    },
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_MAX_S)
            continue
        if failures:
            log.info("start-up step done", extra={"step": what, "failures": failures})
        return


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
        if outbox_collections:
            initialise_series(name, published=[p.topic for p in self._publishes])
        self.health = Health()
        self.dead_letters = DeadLetters(self.broker, name)
        self._indexes = dict(indexes or {})
        for collection in outbox_collections:
            self._indexes[collection] = [*self._indexes.get(collection, ()), *outbox_indexes()]
        self._outbox_collections = tuple(outbox_collections)
        initialise_series(name, collections=self._indexes)
        self._mongo: MongoClient | None = None
        self._indexed = False
        self._relay: OutboxRelay | None = None
        self._pipelines: list[tuple[EventPipeline[Any], str]] = []
        self._consumers: list[TopicConsumer] = []
        self._dead_letter_depth = DeadLetterDepth(settings, name, ())
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

    def notify_outbox(self, collection: str, *more: str) -> None:
        """Tell the relay that new events wait in these outbox collections.

        Named, because the relay's pass then reads only them: a wake-up reading every outbox
        collection of the service costs a database round trip per collection and write.
        Called after a write, so a name that is not an outbox collection is logged, not
        raised (the write stands; its events go out with the next poll). Bind the names at
        start-up with `outbox_notifier`, which refuses them there.
        """
        if unknown := self._unknown_outbox(collection, *more):
            log.error("outbox wake-up for unknown collections", extra={"collections": unknown})
        self._wake_relay((collection, *more))

    def outbox_notifier(self, collection: str, *more: str) -> Callable[[], None]:
        """A wake-up for the collections a use case writes, checked once, here."""
        if unknown := self._unknown_outbox(collection, *more):
            raise ValueError(
                f"{self.name}: {unknown} are not outbox collections "
                f"(outbox_collections={list(self._outbox_collections)})"
            )
        names = (collection, *more)
        return lambda: self._wake_relay(names)

    def _wake_relay(self, collections: tuple[str, ...]) -> None:
        if self._relay is not None:
            self._relay.notify(*collections)

    def _unknown_outbox(self, *collections: str) -> list[str]:
        return sorted(c for c in collections if c not in self._outbox_collections)

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
        initialise_series(self.name, consumed=[payload_type.topic])
        self._dead_letter_depth = DeadLetterDepth(
            self.settings, self.name, [dead_letter_topic(p.topic) for p, _ in self._pipelines]
        )

    def subscriptions(self) -> list[tuple[str, str]]:
        """The `(topic, consumer group)` of every registered handler."""
        return [(p.payload_type.topic, group) for p, group in self._pipelines]

    def asyncapi_json(self) -> str:
        """The AsyncAPI 3 document of the topics this service consumes and publishes."""
        from .asyncapi import asyncapi_document  # FastStream: imported only when asked

        subscriptions = [(p.payload_type, group) for p, group in self._pipelines]
        return asyncapi_document(
            self.name, self.version, self.settings, self._publishes, subscriptions
        )

    async def _ping_mongo(self) -> bool:
        if self._mongo is None or not self._indexed:
            return False
        await self._mongo.admin.command("ping")
        return True

    async def _ping_kafka(self) -> bool:
        return await self.broker.ping(timeout=2.0)

    async def _relay_ok(self) -> bool:
        return self._relay is not None and self._relay.healthy

    async def _consumers_ok(self) -> bool:
        started = len(self._consumers) == len(self._pipelines)
        return started and all(c.running for c in self._consumers)

    @asynccontextmanager
    async def running(
        self, on_startup: StartupHook | None = None, on_shutdown: ShutdownHook | None = None
    ) -> AsyncIterator[None]:
        """Open the database, start the broker, consumers and relay; on exit stop them.

        Shutdown order: the service's own `on_shutdown` (its background loops), stop
        consuming (every topic at once: the records in hand finish and commit, unless their
        handling is failing), flush the outbox (unless the relay is failing) and hand its
        lease on, close the producer, close the database (docs/decisions/0020).
        """
        if self.tracing:
            instrument_mongo(self.tracer_provider)
        self._mongo = create_mongo_client(
            self.settings.mongodb_url,
            app_name=self.name,
            count_commands=self.settings.mongodb_command_metrics,
        )
        self.health.add_probe("mongodb", self._ping_mongo, needed_to_serve_http=True)
        self.health.add_probe("kafka", self._ping_kafka)
        if self._outbox_collections:
            self.health.add_probe("outbox", self._relay_ok)
        if self._pipelines:
            self.health.add_probe("consumers", self._consumers_ok)
        if on_startup is not None:
            await on_startup(self)
        bring_up = asyncio.create_task(self._bring_up(), name=f"{self.name}:start")
        try:
            yield
        finally:
            await self._shut_down(bring_up, on_shutdown)

    async def _shut_down(
        self, bring_up: asyncio.Task[None], on_shutdown: ShutdownHook | None
    ) -> None:
        """Stop in order, and log how long each step took: a shutdown must fit a pod's grace
        period (30 s by default), also during an outage."""
        took = _Stopwatch()
        async with took("starting"):
            bring_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bring_up
            await self._dead_letter_depth.stop()
        if on_shutdown is not None:
            async with took("service"):
                await on_shutdown(self)
        async with took("consumers"):  # together: one topic's wait is not added to another's
            await asyncio.gather(*(consumer.stop() for consumer in self._consumers))
            self._consumers.clear()
        if self._relay is not None:
            async with took("outbox relay"):
                await self._relay.stop()
            self._relay = None
        async with took("producer"):
            await self.broker.stop()
        if self._mongo is not None:
            async with took("mongodb"):
                await close_mongo_client(self._mongo)
            self._mongo = None
        log.info(
            "service stopped",
            extra={"service_name": self.name, "shutdown_s": took.total, "steps_s": took.steps},
        )

    async def _bring_up(self) -> None:
        """The producer, and beside it the indexes, then the relay and consumers; each
        retried until up.

        The HTTP API serves meanwhile (`/healthz` at once; `/readyz` says what is missing:
        the producer connects whether or not MongoDB is there, so a MongoDB outage does not
        read as a Kafka one), so a service restarted during a Kafka or MongoDB outage waits
        instead of crashing. Consumers and the relay start only once the indexes exist: a
        unique index is what makes a redelivered event change nothing.
        """
        producer = asyncio.create_task(
            _until_done("connecting to Kafka", self.broker.start), name=f"{self.name}:producer"
        )
        try:
            await self._bring_up_consumers()
            await producer
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
        self._dead_letter_depth.start()
        log.info("service started", extra={"service_name": self.name})

    async def _bring_up_consumers(self) -> None:
        await _until_done("creating indexes", lambda: ensure_indexes(self.db, self._indexes))
        self._indexed = True
        if self._outbox_collections:
            self._relay = OutboxRelay(
                self.db,
                self._outbox_collections,
                service=self.name,
                broker=self.broker,
                poll_interval_s=self.settings.outbox_poll_interval_s,
                linger_s=self.settings.outbox_linger_ms / 1000,
                lease=RelayLease(
                    self.db,
                    self.settings.outbox_lease_s,
                    owner=replica_lease_owner(self.settings.state_dir),
                ),
            )
            self.health.add_info("outbox", self._relay.info)
            self._relay.start()
        for pipeline, group in self._pipelines:
            consumer = TopicConsumer(
                pipeline,
                group_id=group,
                settings=self.settings,
                client_id=f"switchboard-{self.name}",
            )
            await consumer.start()  # joins in the background
            self._consumers.append(consumer)

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
    """Refuse to start an app whose API operations do not document the shared error answers,
    or take an id in their path that is not a `ResourceId` (one answer for an overlong id).

    Routers made with `http.api_router()` carry them; the OpenAPI document must list what
    a caller can get (Schemathesis checks every answer against it). Checked on the
    document itself: FastAPI nests included routers, so `app.routes` does not list them.
    """
    for path, operations in app.openapi().get("paths", {}).items():
        if not path.startswith("/v"):
            continue
        for method, operation in operations.items():
            documented = set(operation.get("responses", {}))
            missing = [code for code in ERROR_RESPONSES if str(code) not in documented]
            if missing:
                raise RuntimeError(
                    f"{method.upper()} {path}: build its router with "
                    f"switchboard_platform.http.api_router() (undocumented answers {missing})"
                )
            for param in operation.get("parameters", []):
                schema = param.get("schema", {})
                bounded = schema.get("maxLength") == MAX_ID_LENGTH or "$ref" in schema
                if param.get("in") == "path" and not bounded:
                    raise RuntimeError(
                        f"{method.upper()} {path}: type the path parameter {param['name']!r} "
                        "as switchboard_platform.http.ResourceId (or an enum)"
                    )


class _Stopwatch:
    """How long each named step of a shutdown took, in seconds."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @asynccontextmanager
    async def __call__(self, step: str) -> AsyncIterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[step] = round(time.monotonic() - started, 2)

    @property
    def total(self) -> float:
        return round(sum(self.steps.values()), 2)

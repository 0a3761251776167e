"""The Kafka producer every service publishes with: connection, security, acks, tracing.

aiokafka's producer directly, not FastStream's broker: it is what FastStream wrapped, and the
wrapper cost import time (a restarted service comes back slower) and a middleware stack per
message. FastStream still writes each service's AsyncAPI document (`runtime.asyncapi_json`).
With tracing on, every publish is a PRODUCER span whose context travels in `traceparent`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from .settings import ServiceSettings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 15_000
"""The producer's request timeout; the outbox relay's publish timeout must exceed it."""


def client_security(settings: ServiceSettings) -> dict[str, Any]:
    """KAFKA_SECURITY_PROTOCOL / SASL / TLS settings as keyword arguments of an aiokafka client."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL"):
        if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
            raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required for SASL")
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return kwargs


async def stop_consumer(consumer: AIOKafkaConsumer) -> bool:
    """`consumer.stop()`, whose fetcher may re-raise a cancellation of its own; return
    whether the stop ran to its end.

    aiokafka 0.14 (aio-libs/aiokafka#647): a fetch that failed (a broker not ready yet, say)
    sleeps its retry back-off, and `Fetcher.close()` cancels that sleep and then awaits the
    task unguarded, so `stop()` raises `CancelledError` after leaving the group and before
    closing its connections. Uncaught, that failed a service's whole shutdown ("Application
    shutdown failed"): the relay was not flushed, nothing else was stopped, the process
    ended by SIGTERM. Here the connections are closed and the stop goes on; a cancellation
    of the caller's own task still propagates.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await consumer._client.close()  # what stop() does after the fetcher
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("the Kafka consumer's fetcher interrupted its stop; connections closed")
        return False
    return True


class Publisher(Protocol):
    """What publishes records: the `Producer` below, or a fake in unit tests."""

    async def publish(
        self,
        value: bytes,
        topic: str,
        *,
        key: bytes | None = None,
        headers: dict[str, str] | None = None,
        no_confirm: bool = False,
    ) -> asyncio.Future[Any]:
        """Send one record; the future resolves when the broker acknowledged it."""
        ...


class Producer:
    """Publishes records with acks from all in-sync replicas, optionally traced.

    The idempotent producer stays off: the embedded dev broker does not support it, and
    consumers are idempotent on the event id anyway (docs/decisions/0003).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        client_id: str,
        tracer: trace.Tracer | None = None,
        request_timeout_ms: int = REQUEST_TIMEOUT_MS,
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._tracer = tracer
        self._producer: AIOKafkaProducer | None = None

    def _build(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=2,
            request_timeout_ms=self._request_timeout_ms,
            **client_security(self._settings),
        )

    async def start(self) -> None:
        """Connect (the first metadata request); raises if Kafka cannot be reached."""
        producer = self._build()
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    @property
    def started(self) -> bool:
        """Whether the producer is connected."""
        return self._producer is not None

    async def stop(self) -> None:
        """Flush what is buffered and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ping(self, timeout: float = 2.0) -> bool:
        """Whether a broker answers a metadata request in time."""
        if self._producer is None:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._producer.client.fetch_all_metadata()
        except Exception:
            return False
        return True

    async def publish(
        self,
        value: bytes,
        topic: str,
        *,
        key: bytes | None = None,
        headers: dict[str, str] | None = None,
        no_confirm: bool = False,
    ) -> asyncio.Future[Any]:
        """Hand the record to the producer; the future resolves with the broker's ack.

        Awaited with `no_confirm=False`, it returns once acknowledged. Raises when the
        record cannot be sent at all (too large, producer not started).
        """
        if self._producer is None:
            raise ConnectionError("the Kafka producer is not connected")
        carrier = dict(headers or {})
        if self._tracer is None:
            future = await self._send(value, topic, key, carrier)
        else:
            # As the messaging conventions (and FastStream) have it: a `create` span for the
            # message, whose context travels with it (consumers' spans are its children), and
            # a `publish` span under it for handing it to the broker.
            attributes = {
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.kafka.message.key": (key or b"").decode(errors="replace"),
            }
            create = self._tracer.start_span(
                f"{topic} create",
                kind=SpanKind.PRODUCER,
                attributes={**attributes, "messaging.operation.type": "create"},
            )
            created = trace.set_span_in_context(create)
            propagate.inject(carrier, context=created)
            create.end()
            with self._tracer.start_as_current_span(
                f"{topic} publish",
                context=created,
                kind=SpanKind.PRODUCER,
                attributes={**attributes, "messaging.operation.type": "publish"},
            ):
                future = await self._send(value, topic, key, carrier)
        if not no_confirm:
            await future
        return future

    async def _send(
        self, value: bytes, topic: str, key: bytes | None, headers: dict[str, str]
    ) -> asyncio.Future[Any]:
        assert self._producer is not None
        encoded = [(name, text.encode()) for name, text in headers.items()]
        future: asyncio.Future[Any] = await self._producer.send(
            topic, value, key=key, headers=encoded
        )
        return future

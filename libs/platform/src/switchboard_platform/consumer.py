"""How every service consumes events: decode, dead-letter the bad, retry the transient.

A message that cannot be decoded, violates its schema or has an unknown type goes to
`<topic>.dlq` with the reason in headers, and the partition moves on. A handler that fails
for a transient reason (database unreachable) is retried with capped exponential backoff
without committing the offset, while the service reports itself not ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.params import NoCast

from switchboard_contracts import Event, EventDecodeError, EventPayload, decode
from switchboard_contracts.topics import dead_letter_topic

from .health import Health
from .logs import bind_tenant, log_scope
from .metrics import HANDLER_DURATION, MESSAGES_CONSUMED, MESSAGES_DEAD_LETTERED, MESSAGES_FAILED
from .mongo import is_transient
from .settings import ServiceSettings

log = logging.getLogger(__name__)

P = TypeVar("P", bound=EventPayload)
EventHandler = Callable[[Event[P]], Awaitable[None]]

MAX_BACKOFF_S = 5.0


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A Kafka record as it arrived, before any decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def is_transient_error(exc: BaseException) -> bool:
    """True when retrying later may succeed: lost database or broker, timeouts."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False))
    return is_transient(exc) or isinstance(exc, TimeoutError | ConnectionError)


class DeadLetters:
    """Publishes unprocessable records to `<topic>.dlq`, original bytes and headers kept."""

    def __init__(self, broker: KafkaBroker, service: str) -> None:
        self._broker = broker
        self._service = service

    async def send(self, record: RawRecord, kind: str, reason: str) -> None:
        """Dead-letter `record`; the headers name the error, this service and the origin."""
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        headers.update(
            {
                "dlq_error_kind": kind,
                "dlq_error_reason": reason[:1000],
                "dlq_service": self._service,
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        await self._broker.publish(
            record.value or b"", dead_letter_topic(record.topic), key=record.key, headers=headers
        )
        MESSAGES_DEAD_LETTERED.labels(service=self._service, topic=record.topic, reason=kind).inc()
        log.warning(
            "dead-lettered message",
            extra={"topic": record.topic, "offset": record.offset, "error_kind": kind},
        )


class EventPipeline(Generic[P]):
    """Turns raw records of one topic into calls of one typed handler."""

    def __init__(
        self,
        *,
        service: str,
        payload_type: type[P],
        handler: EventHandler[P],
        dead_letters: DeadLetters,
        health: Health,
    ) -> None:
        self.service = service
        self.topic = payload_type.topic
        self.payload_type = payload_type
        self._handler = handler
        self._dead_letters = dead_letters
        self._health = health
        self._component = f"consumer:{self.topic}"

    async def process(self, record: RawRecord) -> None:
        """Handle one record; return only when it is handled or dead-lettered."""
        try:
            event = decode(record.topic, record.value, record.headers)
        except EventDecodeError as exc:
            await self._dead_letters.send(record, exc.kind, exc.reason)
            return
        bind_tenant(event.tenantid)
        if not isinstance(event.data, self.payload_type):
            await self._dead_letters.send(record, "unexpected_type", f"not a {self.topic} event")
            return
        started = time.perf_counter()
        await self._handle_with_retry(record, event)  # type: ignore[arg-type]
        HANDLER_DURATION.labels(service=self.service, topic=self.topic).observe(
            time.perf_counter() - started
        )

    async def _handle_with_retry(self, record: RawRecord, event: Event[P]) -> None:
        backoff = 0.1
        while True:
            try:
                await self._handler(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient_error(exc):
                    log.exception("handler failed; dead-lettering", extra={"event_id": event.id})
                    reason = f"{type(exc).__name__}: {exc}"
                    await self._dead_letters.send(record, "handler_error", reason)
                    self._health.recover(self._component)
                    return
                MESSAGES_FAILED.labels(service=self.service, topic=self.topic).inc()
                self._health.stall(self._component, type(exc).__name__)
                log.warning("transient failure; retrying in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._health.recover(self._component)
            MESSAGES_CONSUMED.labels(service=self.service, topic=self.topic).inc()
            return


def _raw_body(msg: Any) -> bytes:
    """FastStream decoder that hands over the bytes untouched: the pipeline decodes."""
    body: bytes = msg.body
    return body


def subscribe(
    broker: KafkaBroker,
    pipeline: EventPipeline[Any],
    *,
    group_id: str,
    settings: ServiceSettings,
) -> None:
    """Attach `pipeline` to its topic as a consumer-group subscriber with commit-after-handle."""
    payload_type = pipeline.payload_type

    async def consume(body: Any, msg: KafkaMessage) -> None:
        raw = msg.raw_message
        assert not isinstance(raw, tuple)
        record = RawRecord(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=raw.value,
            headers=tuple(raw.headers),
        )
        with log_scope():
            await pipeline.process(record)

    consume.__name__ = f"on_{pipeline.topic.replace('.', '_')}"
    # Real (not string) annotations: FastStream documents the payload model in AsyncAPI,
    # NoCast keeps it from validating, so malformed bytes reach the pipeline's dead-lettering.
    body_type = NoCast[payload_type]  # type: ignore[valid-type]
    consume.__annotations__ = {"body": body_type, "msg": KafkaMessage, "return": None}
    broker.subscriber(
        pipeline.topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(settings.kafka_session_timeout_ms // 4, 500),
        rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
        group_instance_id=(
            f"{settings.kafka_group_instance_id}-{pipeline.topic}"
            if settings.kafka_group_instance_id
            else None
        ),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw_body,
        title=f"{pipeline.topic}:{group_id}",
        description=payload_type.__doc__,
    )(consume)

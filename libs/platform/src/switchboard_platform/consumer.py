"""How every service handles one event: decode, dead-letter the bad, retry the transient.

A message that cannot be decoded, violates its schema or has an unknown type goes to
`<topic>.dlq` with the reason in headers, and the partition moves on once the broker
acknowledged that copy (until then it waits, retrying). A handler that fails
for a transient reason (database unreachable) is retried with capped exponential backoff
(its offset is not committed meanwhile), while the service reports itself not ready.
`topic_consumer.TopicConsumer` feeds records in, partition by partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from switchboard_contracts import Event, EventDecodeError, EventPayload, decode
from switchboard_contracts.topics import dead_letter_topic

from .health import Health
from .kafka import Publisher
from .logs import bind_tenant, log_scope
from .metrics import HANDLER_DURATION, MESSAGES_CONSUMED, MESSAGES_DEAD_LETTERED, MESSAGES_FAILED
from .mongo import is_transient

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


# what the broker refuses however often it is asked: a record too large for it
REFUSED_FOR_GOOD = (MessageSizeTooLargeError, RecordListTooLargeError)


def is_transient_error(exc: BaseException) -> bool:
    """True when retrying later may succeed: lost database or broker, timeouts."""
    if isinstance(exc, KafkaTimeoutError):  # no ack in time; aiokafka marks it not retriable
        return True
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False))
    return is_transient(exc) or isinstance(exc, TimeoutError | ConnectionError)


class DeadLetters:
    """Publishes unprocessable records to `<topic>.dlq`, original bytes and headers kept."""

    def __init__(self, broker: Publisher, service: str) -> None:
        self._broker = broker
        self._service = service

    async def send(
        self, record: RawRecord, kind: str, reason: str, *, without_value: bool = False
    ) -> None:
        """Dead-letter `record`; the headers name the error, this service and the origin.

        `reason` must name fields and rules only: dead-letter headers are read by operators
        and kept as long as the topic, so they never carry message content. With
        `without_value` the copy carries headers only (`dlq_value_omitted`): for a record
        the broker refuses to take back (its headers made it too large).
        """
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
        if without_value:
            headers["dlq_value_omitted"] = "the broker refused the copy with its value"
        value = b"" if without_value else record.value or b""
        await self._broker.publish(
            value, dead_letter_topic(record.topic), key=record.key, headers=headers
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
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.service = service
        self._tracer = tracer
        self.topic = payload_type.topic
        self.payload_type = payload_type
        self._handler = handler
        self._dead_letters = dead_letters
        self._health = health
        self._component = f"consumer:{self.topic}"
        self._retrying: set[tuple[int, int]] = set()

    def stalled(self, reason: str) -> None:
        """Report the topic's consumption stuck (readiness says `reason`) until `recovered`."""
        self._health.stall(self._component, reason)

    def recovered(self) -> None:
        """The topic's consumption moves again."""
        self._health.recover(self._component)

    def retrying(self, partition: int, offset: int) -> bool:
        """Whether that record's handling failed and is being retried (a lost database or
        broker): it cannot finish until that comes back."""
        return (partition, offset) in self._retrying

    async def process(self, record: RawRecord) -> None:
        """Handle one record in its own log scope (and span); return once handled or dead."""
        with log_scope(), self._in_hand(record):
            if self._tracer is None:
                await self._process(record)
                return
            parent = propagate.extract({k: v.decode(errors="replace") for k, v in record.headers})
            token = otel_context.attach(parent)
            try:
                with self._tracer.start_as_current_span(
                    f"{record.topic} process",
                    kind=SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.operation.type": "process",
                        "messaging.destination.name": record.topic,
                        "messaging.destination.partition.id": str(record.partition),
                        "messaging.kafka.offset": record.offset,
                        "messaging.kafka.message.key": (record.key or b"").decode(errors="replace"),
                    },
                ):
                    await self._process(record)
            finally:
                otel_context.detach(token)

    @contextlib.contextmanager
    def _in_hand(self, record: RawRecord) -> Iterator[None]:
        """While `record` is handled; `retrying` says whether an attempt of it failed."""
        try:
            yield
        finally:
            self._retrying.discard((record.partition, record.offset))

    def _failed(self, record: RawRecord) -> None:
        self._retrying.add((record.partition, record.offset))

    async def _process(self, record: RawRecord) -> None:
        try:
            event = decode(record.topic, record.value, record.headers)
        except EventDecodeError as exc:
            await self._dead_letter(record, exc.kind, exc.reason)
            return
        except Exception as exc:  # a fault the contract did not foresee (a validator's bug)
            log.exception("record could not be decoded; dead-lettering")
            # the exception's type only: its message may quote the record's content
            reason = f"decoding failed: {type(exc).__module__}.{type(exc).__qualname__}"
            await self._dead_letter(record, "malformed", reason)
            return
        bind_tenant(event.tenantid)
        _describe_span(event)
        if not isinstance(event.data, self.payload_type):
            await self._dead_letter(record, "unexpected_type", f"not a {self.topic} event")
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
                    # the exception's type only: its message may quote the event's content
                    reason = f"{type(exc).__module__}.{type(exc).__qualname__}"
                    await self._dead_letter(record, "handler_error", reason)
                    return
                MESSAGES_FAILED.labels(service=self.service, topic=self.topic).inc()
                self._failed(record)
                self._health.stall(self._component, type(exc).__name__)
                log.warning("transient failure; retrying in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._health.recover(self._component)
            MESSAGES_CONSUMED.labels(service=self.service, topic=self.topic).inc()
            return

    async def _dead_letter(self, record: RawRecord, kind: str, reason: str) -> None:
        """Dead-letter `record`, however long the broker takes: the partition waits (its
        offset uncommitted, the service not ready) rather than skip a record unrecorded.

        A copy the broker refuses for good (too large once the reason's headers are added)
        goes again without its value; the headers still say where the original lies.
        """
        backoff = 0.1
        without_value = False
        while True:
            try:
                await self._dead_letters.send(record, kind, reason, without_value=without_value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, REFUSED_FOR_GOOD) and not without_value:
                    without_value = True
                    log.warning("dead letter refused; sending it without its value", exc_info=True)
                    continue
                self._failed(record)
                self._health.stall(self._component, f"dead letter: {type(exc).__name__}")
                log.warning("dead letter failed; retrying in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._health.recover(self._component)
            return


def _describe_span(event: Event[Any]) -> None:
    """Name the event and the call it belongs to on the consumer's span: ids only.

    `switchboard.call_id` is what `switchboard trace <call-id>` finds a call's trace by; the
    call id is an opaque identifier (the event's content stays out of spans).
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("messaging.message.id", event.id)
    call_id = getattr(event.data, "call_id", None)
    if isinstance(call_id, str):
        span.set_attribute("switchboard.call_id", call_id)

"""Switchboard event contracts: the envelope, the payloads of every topic, the Kafka binding."""

from .envelope import Event, EventPayload, make_event
from .kafka_binding import (
    EventDecodeError,
    KafkaRecord,
    MalformedEvent,
    SchemaViolation,
    UnknownEventType,
    decode,
    encode,
)

__all__ = [
    "Event",
    "EventDecodeError",
    "EventPayload",
    "KafkaRecord",
    "MalformedEvent",
    "SchemaViolation",
    "UnknownEventType",
    "decode",
    "encode",
    "make_event",
]

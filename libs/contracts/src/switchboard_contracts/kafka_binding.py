"""CloudEvents Kafka protocol binding, binary content mode: attributes in `ce_*` headers.

The record key is the tenant id, so each tenant's events keep their order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .envelope import SPEC_VERSION, Event, EventPayload
from .registry import payload_model

CONTENT_TYPE = "application/json"
_REQUIRED = ("id", "source", "type", "specversion", "tenantid")
_OPTIONAL = ("time", "subject")


class EventDecodeError(ValueError):
    """A Kafka record that is not a valid event of this contract; `reason` says why."""

    kind = "malformed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedEvent(EventDecodeError):
    """Not a CloudEvent at all: missing headers, undecodable bytes, not JSON."""

    kind = "malformed"


class UnknownEventType(EventDecodeError):
    """A CloudEvent whose type or version this contract version does not know."""

    kind = "unknown_type"


class SchemaViolation(EventDecodeError):
    """A known event type whose data does not match its schema."""

    kind = "schema_violation"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What goes on the wire: topic, key, value and string headers."""

    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str]


def encode(event: Event[Any]) -> KafkaRecord:
    """Encode an event as a binary-mode CloudEvents Kafka record."""
    headers = {
        "ce_specversion": event.specversion,
        "ce_id": event.id,
        "ce_source": event.source,
        "ce_type": event.type,
        "ce_time": event.time.isoformat(),
        "ce_tenantid": event.tenantid,
        "content-type": event.datacontenttype,
    }
    if event.subject is not None:
        headers["ce_subject"] = event.subject
    value = event.data.model_dump_json().encode()
    return KafkaRecord(topic=event.topic, key=event.tenantid.encode(), value=value, headers=headers)


def _header_map(headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, str]:
    """The record's headers as text; a header that is not UTF-8 is malformed only when it
    is one of ours (`ce_*`, `content-type`): another producer's binary header is skipped."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for name, raw in items:
        key = name.lower()
        if isinstance(raw, bytes | bytearray):
            try:
                result[key] = bytes(raw).decode()
            except UnicodeDecodeError as exc:
                if key.startswith("ce_") or key == "content-type":
                    raise MalformedEvent(f"header {name!r} is not UTF-8") from exc
        elif raw is not None:
            result[key] = str(raw)
    return result


def decode(
    topic: str,
    value: bytes | None,
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]],
) -> Event[EventPayload]:
    """Decode a Kafka record into a typed event, or raise an `EventDecodeError` saying why."""
    attrs = _header_map(headers)
    missing = [a for a in _REQUIRED if f"ce_{a}" not in attrs]
    if missing:
        raise MalformedEvent(
            f"missing CloudEvents header(s): {', '.join('ce_' + m for m in missing)}"
        )
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise MalformedEvent(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    model = payload_model(attrs["ce_type"])
    if model is None:
        raise UnknownEventType(f"unknown event type {attrs['ce_type']!r}")
    if model.topic != topic:
        raise MalformedEvent(f"event type {attrs['ce_type']!r} does not belong on topic {topic!r}")
    if value is None:
        raise MalformedEvent("record has no value")
    try:
        data_json = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"value is not JSON: {exc}") from exc
    except RecursionError:
        raise MalformedEvent("value is nested too deeply to read") from None
    try:
        data = model.model_validate(data_json)
    except ValidationError as exc:
        raise SchemaViolation(describe_validation_error(exc)) from exc
    except RecursionError:
        raise SchemaViolation("data is nested too deeply to check") from None
    # A bad envelope attribute (e.g. an unparsable ce_time) is malformed, not a data fault.
    # The reason names the attribute and the rule, never its value (it may be personal data).
    try:
        time = datetime.fromisoformat(attrs["ce_time"]) if "ce_time" in attrs else None
    except ValueError:
        raise MalformedEvent("ce_time: not an ISO 8601 time") from None
    try:
        return Event[model](  # type: ignore[valid-type]
            id=attrs["ce_id"],
            source=attrs["ce_source"],
            type=attrs["ce_type"],
            specversion=attrs["ce_specversion"],
            tenantid=attrs["ce_tenantid"],
            subject=attrs.get("ce_subject"),
            data=data,
            **({"time": time} if time else {}),
        )
    except ValidationError as exc:
        named = describe_validation_error(exc, prefix="ce_")
        raise MalformedEvent(f"bad CloudEvents attribute: {named}") from exc


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """Summarise a pydantic error as `field.path: message; ...`, naming each field at fault
    and its rule, never the input (`include_input=False`; a message of a value error is
    the validator's own wording)."""
    parts = []
    for err in exc.errors(include_input=False, include_context=False)[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{prefix}{loc}: {err['msg']}")
    return "; ".join(parts)

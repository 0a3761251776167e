"""The CloudEvents 1.0 envelope every Switchboard event travels in, and the payload base class."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .common import Timestamp

SPEC_VERSION = "1.0"
TYPE_PREFIX = "org.switchboard"


class EventPayload(BaseModel):
    """Base of every versioned event payload; subclasses set `topic` and `version`.

    Consumers ignore fields they do not know, so a producer may add optional fields
    without breaking a consumer deployed elsewhere (see the schema compatibility test).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def event_type(cls) -> str:
        """CloudEvents `type` of this payload, e.g. `org.switchboard.call.received.v1`."""
        return f"{TYPE_PREFIX}.{cls.topic}.v{cls.version}"


P = TypeVar("P", bound=EventPayload)


def new_event_id() -> str:
    """Return a fresh, globally unique event id."""
    return str(uuid.uuid4())


class Event(BaseModel, Generic[P]):
    """One event: CloudEvents context attributes plus the typed `data` payload."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_event_id, min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200, examples=["/switchboard/intake"])
    type: str = Field(min_length=1, max_length=200)
    specversion: str = SPEC_VERSION
    time: Timestamp = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = Field(default=None, max_length=200)
    tenantid: str = Field(min_length=1, max_length=100, description="Tenant the event belongs to")
    datacontenttype: str = "application/json"
    data: P

    @property
    def topic(self) -> str:
        """Kafka topic the event belongs on."""
        return self.data.topic


def make_event(
    data: P,
    *,
    tenant_id: str,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: Timestamp | None = None,
) -> Event[P]:
    """Wrap a payload in a fresh envelope."""
    extra: dict[str, Any] = {}
    if event_id is not None:
        extra["id"] = event_id
    if time is not None:
        extra["time"] = time
    # Parametrise with the concrete payload class so `data` is validated and dumped as it.
    event_cls: type[Event[P]] = Event[type(data)]  # type: ignore[misc,assignment]
    return event_cls(
        source=source,
        type=type(data).event_type(),
        subject=subject,
        tenantid=tenant_id,
        data=data,
        **extra,
    )

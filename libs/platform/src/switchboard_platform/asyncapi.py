"""A service's AsyncAPI 3 document, written by FastStream from the payload models.

Built on request from a FastStream broker that is never connected: FastStream documents the
topics, aiokafka (see `kafka.py`) carries the messages. Imported lazily, so a service's
start does not pay for FastStream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.params import NoCast
from faststream.specification import AsyncAPI

from switchboard_contracts import EventPayload

from .logs import route_faststream_logs
from .settings import ServiceSettings


def asyncapi_document(
    service: str,
    version: str,
    settings: ServiceSettings,
    publishes: Sequence[type[EventPayload]],
    subscriptions: Sequence[tuple[type[EventPayload], str]],
) -> str:
    """The JSON document: every topic published, every topic consumed with its group."""
    route_faststream_logs()
    spec = KafkaBroker(settings.kafka_bootstrap_servers)
    for payload in publishes:
        spec.publisher(
            payload.topic,
            title=f"{payload.topic}:{service}",
            schema=payload,
            description=payload.__doc__,
        )
    for payload, group in subscriptions:

        async def documented(body: Any) -> None:  # never called: the AsyncAPI entry
            """Documents the subscription."""

        documented.__annotations__ = {"body": NoCast[payload], "return": None}  # type: ignore[valid-type,misc]
        spec.subscriber(
            payload.topic,
            group_id=group,
            title=f"{payload.topic}:{group}",
            description=payload.__doc__,
        )(documented)
    document = AsyncAPI(spec, title=f"Switchboard {service}", version=version)
    return document.to_specification().to_json()

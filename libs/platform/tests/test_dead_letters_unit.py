"""Dead-lettering when the broker will not take the copy, without servers.

The partition's worker must neither die (its partition would stop for good) nor skip the
record unrecorded: it waits, stalled and retrying, and a copy refused for good goes again
without its value.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from switchboard_contracts.calls import CallReceived
from switchboard_platform.consumer import (
    DeadLetters,
    EventPipeline,
    RawRecord,
    is_transient_error,
)
from switchboard_platform.health import Health

COMPONENT = "consumer:call.received"


@dataclass
class FlakyBroker:
    """Raises the given errors in turn, then takes every record."""

    errors: list[Exception]
    sent: list[tuple[bytes, str, dict[str, str]]] = field(default_factory=list)
    attempts: int = 0
    refused: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(
        self,
        value: bytes,
        topic: str,
        *,
        key: bytes | None = None,
        headers: dict[str, str] | None = None,
        no_confirm: bool = False,
    ) -> asyncio.Future[Any]:
        self.attempts += 1
        if self.errors:
            self.refused.set()
            raise self.errors.pop(0)
        self.sent.append((value, topic, dict(headers or {})))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def _never_called(event: Any) -> None:
    raise AssertionError("a malformed record reached the handler")


def _pipeline(broker: FlakyBroker, health: Health) -> EventPipeline[CallReceived]:
    return EventPipeline(
        service="unit",
        payload_type=CallReceived,
        handler=_never_called,
        dead_letters=DeadLetters(broker, "unit"),
        health=health,
    )


MALFORMED = RawRecord(
    topic="call.received",
    partition=0,
    offset=7,
    key=b"tenant-a",
    value=b"\x00 not json",
    headers=(("ce_id", b"e-1"),),
)


async def test_a_dead_letter_the_broker_cannot_take_yet_is_retried_while_readiness_says_why() -> (
    None
):
    broker = FlakyBroker([KafkaTimeoutError(), KafkaTimeoutError()])
    health = Health()
    task = asyncio.create_task(_pipeline(broker, health).process(MALFORMED))
    await asyncio.wait_for(broker.refused.wait(), 5)
    assert "KafkaTimeoutError" in health.stalled[COMPONENT]
    assert not task.done()  # the record waits: its offset is not handled yet
    await asyncio.wait_for(task, 5)
    assert broker.attempts == 3
    [(value, topic, headers)] = broker.sent
    assert (value, topic) == (MALFORMED.value, "call.received.dlq")
    assert headers["dlq_error_kind"] == "malformed"
    assert COMPONENT not in health.stalled


async def test_a_copy_refused_for_good_goes_again_without_its_value() -> None:
    broker = FlakyBroker([MessageSizeTooLargeError()])
    health = Health()
    await asyncio.wait_for(_pipeline(broker, health).process(MALFORMED), 5)
    [(value, topic, headers)] = broker.sent
    assert (value, topic) == (b"", "call.received.dlq")
    assert headers["dlq_value_omitted"]
    assert headers["dlq_original_offset"] == "7"
    assert headers["ce_id"] == "e-1"


def test_a_publish_that_timed_out_is_transient_a_refused_one_is_not() -> None:
    assert is_transient_error(KafkaTimeoutError())
    assert not is_transient_error(MessageSizeTooLargeError())

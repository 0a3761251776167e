"""Dead-lettering when the broker will not take the copy, without servers.

The partition's worker must neither die (its partition would stop for good) nor skip the
record unrecorded: it waits, stalled and retrying, and a copy refused for good goes again
without its value.
"""

from __future__ import annotations

import asyncio
from dataclasses import astuple, dataclass, field
from typing import Any

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from pymongo.errors import AutoReconnect

from switchboard_contracts.calls import CallReceived
from switchboard_platform.consumer import (
    DeadLetters,
    EventPipeline,
    RawRecord,
    is_transient_error,
)
from switchboard_platform.health import Health
from switchboard_platform.testing.calls import call_record, received_call
from switchboard_platform.testing.fakes import FakeBroker
from switchboard_platform.testing.kafka import raw_record

COMPONENT = "consumer:call.received"


@dataclass
class Refusals:
    """Refuses the first records with the given errors, then takes every record."""

    errors: list[Exception]
    attempts: int = 0
    refused: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, value: bytes, topic: str) -> Exception | None:
        self.attempts += 1
        if not self.errors:
            return None
        self.refused.set()
        return self.errors.pop(0)


async def _never_called(event: Any) -> None:
    raise AssertionError("a malformed record reached the handler")


def _pipeline(broker: FakeBroker, health: Health) -> EventPipeline[CallReceived]:
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
    refusals = Refusals([KafkaTimeoutError(), KafkaTimeoutError()])
    broker, health = FakeBroker(fail=refusals), Health()
    pipeline = _pipeline(broker, health)
    task = asyncio.create_task(pipeline.process(MALFORMED))
    await asyncio.wait_for(refusals.refused.wait(), 5)
    await asyncio.sleep(0)
    assert "KafkaTimeoutError" in health.stalled[COMPONENT]
    assert not task.done()  # the record waits: its offset is not handled yet
    assert pipeline.retrying(0, 7)  # a shutdown need not wait for it
    assert not pipeline.retrying(0, 8)
    await asyncio.wait_for(task, 5)
    assert not pipeline.retrying(0, 7)
    assert refusals.attempts == 3
    [(topic, _, value, headers)] = [astuple(p) for p in broker.published]
    assert (value, topic) == (MALFORMED.value, "call.received.dlq")
    assert headers["dlq_error_kind"] == "malformed"
    assert COMPONENT not in health.stalled


async def test_a_copy_refused_for_good_goes_again_without_its_value() -> None:
    broker = FakeBroker(fail=Refusals([MessageSizeTooLargeError()]))
    await asyncio.wait_for(_pipeline(broker, Health()).process(MALFORMED), 5)
    [(topic, _, value, headers)] = [astuple(p) for p in broker.published]
    assert (value, topic) == (b"", "call.received.dlq")
    assert headers["dlq_value_omitted"]
    assert headers["dlq_original_offset"] == "7"
    assert headers["ce_id"] == "e-1"


def test_a_publish_that_timed_out_is_transient_a_refused_one_is_not() -> None:
    assert is_transient_error(KafkaTimeoutError())
    assert not is_transient_error(MessageSizeTooLargeError())


async def test_a_record_whose_handler_fails_transiently_is_retrying_until_it_succeeds() -> None:
    """What a stopping consumer asks: a record whose attempt failed (the database away)
    cannot finish, so the stop does not wait for it (docs/decisions/0020)."""
    attempts: list[int] = []
    answered = asyncio.Event()

    async def handler(event: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise AutoReconnect("database away")
        await answered.wait()

    record = raw_record(call_record(received_call("tenant-a")), partition=2, offset=9)
    pipeline = EventPipeline(
        service="unit",
        payload_type=CallReceived,
        handler=handler,
        dead_letters=DeadLetters(FakeBroker(), "unit"),
        health=Health(),
    )
    task = asyncio.create_task(pipeline.process(record))
    while len(attempts) < 1:  # noqa: ASYNC110 - the handler records its attempts
        await asyncio.sleep(0.01)
    assert pipeline.retrying(2, 9)
    answered.set()
    await asyncio.wait_for(task, 5)
    assert len(attempts) == 2
    assert not pipeline.retrying(2, 9)

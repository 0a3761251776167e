"""CloudEvents Kafka binding: every payload round-trips, and each kind of bad record is named."""

import json
from datetime import UTC, datetime

import pytest

from switchboard_contracts.calls import CallReceived
from switchboard_contracts.dsr import DsrRequested
from switchboard_contracts.envelope import EventPayload
from switchboard_contracts.kafka_binding import (
    MalformedEvent,
    SchemaViolation,
    UnknownEventType,
    decode,
    encode,
)
from switchboard_contracts.registry import PAYLOAD_MODELS
from switchboard_contracts.samples import sample_event


def call_record() -> tuple[str, bytes, dict[str, str]]:
    record = encode(sample_event(CallReceived))
    return record.topic, record.value, dict(record.headers)


@pytest.mark.parametrize("model", PAYLOAD_MODELS, ids=lambda m: m.topic)
def test_every_payload_type_round_trips(model: type[EventPayload]) -> None:
    event = sample_event(model, tenant_id="kanzlei-meyer")
    record = encode(event)
    assert record.topic == model.topic
    assert record.key == b"kanzlei-meyer"
    assert record.headers["ce_type"] == model.event_type()
    decoded = decode(record.topic, record.value, record.headers)
    assert decoded == event
    assert type(decoded.data) is model


def test_headers_as_byte_pairs_from_the_kafka_client_decode() -> None:
    event = sample_event(CallReceived)
    record = encode(event)
    pairs = [(name, value.encode()) for name, value in record.headers.items()]
    assert decode(record.topic, record.value, pairs) == event


def test_subject_and_time_survive_the_round_trip() -> None:
    event = sample_event(CallReceived).model_copy(
        update={"subject": "call-0001", "time": datetime(2025, 3, 14, 9, 30, 1, 5, tzinfo=UTC)}
    )
    record = encode(event)
    assert record.headers["ce_subject"] == "call-0001"
    assert decode(record.topic, record.value, record.headers) == event


@pytest.mark.parametrize("value", [b"\x00\xffgarbage", b"{not json", b"", None])
def test_garbage_value_is_malformed(value: bytes | None) -> None:
    topic, _, headers = call_record()
    with pytest.raises(MalformedEvent) as caught:
        decode(topic, value, headers)
    assert caught.value.kind == "malformed"


@pytest.mark.parametrize(
    "header", ["ce_id", "ce_source", "ce_type", "ce_specversion", "ce_tenantid"]
)
def test_missing_header_is_malformed_and_named(header: str) -> None:
    topic, value, headers = call_record()
    del headers[header]
    with pytest.raises(MalformedEvent, match=header):
        decode(topic, value, headers)


def test_no_headers_at_all_is_malformed() -> None:
    topic, value, _ = call_record()
    with pytest.raises(MalformedEvent, match="missing CloudEvents header"):
        decode(topic, value, [])


@pytest.mark.parametrize(
    ("header", "bad"), [("ce_specversion", "0.3"), ("ce_time", "yesterday"), ("ce_id", "")]
)
def test_bad_envelope_attribute_is_malformed_not_a_schema_violation(header: str, bad: str) -> None:
    topic, value, headers = call_record()
    headers[header] = bad
    with pytest.raises(MalformedEvent):
        decode(topic, value, headers)


@pytest.mark.parametrize(
    "event_type", ["org.switchboard.call.received.v2", "org.switchboard.call.teleported.v1", "x"]
)
def test_unknown_type_or_future_version_is_unknown(event_type: str) -> None:
    topic, value, headers = call_record()
    headers["ce_type"] = event_type
    with pytest.raises(UnknownEventType, match="unknown event type") as caught:
        decode(topic, value, headers)
    assert caught.value.kind == "unknown_type"


def test_wrong_data_is_a_schema_violation_naming_the_field() -> None:
    topic, _, headers = call_record()
    data = sample_event(CallReceived).data.model_dump(mode="json")
    data["caller"]["phone"] = "0241 123"
    del data["concern"]
    with pytest.raises(SchemaViolation) as caught:
        decode(topic, json.dumps(data).encode(), headers)
    assert caught.value.kind == "schema_violation"
    assert "caller.phone" in caught.value.reason
    assert "concern" in caught.value.reason


def test_json_that_is_not_an_object_is_a_schema_violation() -> None:
    topic, _, headers = call_record()
    with pytest.raises(SchemaViolation, match="<root>"):
        decode(topic, b"[1, 2]", headers)


def test_event_on_the_wrong_topic_is_malformed() -> None:
    _, value, headers = call_record()
    with pytest.raises(MalformedEvent, match=r"does not belong on topic 'note\.created'"):
        decode("note.created", value, headers)


# Found by an outside probe (2026-11-28): each of these stopped a partition for good, or was
# refused only by the handler (a 64-bit overflow in PyMongo), or quoted the input.


def test_json_nested_deeper_than_python_reads_is_malformed_not_a_recursion_error() -> None:
    topic, _, headers = call_record()
    with pytest.raises(MalformedEvent, match="nested too deeply"):
        decode(topic, b"[" * 100_000 + b"]" * 100_000, headers)


def test_a_dsr_request_with_a_naive_and_an_aware_time_reads_the_naive_one_as_utc() -> None:
    event = sample_event(DsrRequested)
    record = encode(event)
    data = json.loads(record.value)
    data["requested_at"] = "2025-03-14T09:30:00"  # the validator compared it with an aware due_at
    decoded = decode(record.topic, json.dumps(data).encode(), record.headers).data
    assert isinstance(decoded, DsrRequested)
    assert decoded.requested_at == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("received_at", "9999-12-31T23:59:59-23:59"),  # overflowed on its way to UTC
        ("received_at", "0001-01-01T00:00:00+01:00"),
        ("started_at", "2201-01-01T00:00:00+00:00"),
        ("duration_seconds", 2**63),  # MongoDB stores 64-bit integers
        ("duration_seconds", -1),
    ],
)
def test_times_and_numbers_no_database_stores_are_schema_violations_naming_the_field(
    field: str, bad: object
) -> None:
    topic, value, headers = call_record()
    data = json.loads(value)
    data[field] = bad
    with pytest.raises(SchemaViolation) as caught:
        decode(topic, json.dumps(data).encode(), headers)
    assert caught.value.reason.startswith(f"{field}:")
    assert str(bad) not in caught.value.reason


@pytest.mark.parametrize(
    ("header", "bad"),
    [
        ("ce_time", "9999-12-31T23:59:59+00:00"),  # froze "newest event wins" stores for good
        ("ce_time", "Erika-Mustermann"),
        ("ce_subject", "Erika Mustermann +4915112345678 " * 10),
        ("ce_source", "Erika Mustermann +4915112345678 " * 10),
    ],
)
def test_a_bad_envelope_attribute_is_named_without_quoting_it(header: str, bad: str) -> None:
    topic, value, headers = call_record()
    headers[header] = bad
    with pytest.raises(MalformedEvent) as caught:
        decode(topic, value, headers)
    assert caught.value.reason.startswith(("bad CloudEvents attribute: ce_", "ce_time:"))
    assert header.removeprefix("ce_") in caught.value.reason
    assert "Erika" not in caught.value.reason
    assert "9999" not in caught.value.reason


def test_a_binary_header_of_another_producer_is_skipped_but_one_of_ours_is_malformed() -> None:
    topic, value, headers = call_record()
    pairs = [(name, text.encode()) for name, text in headers.items()]
    assert decode(topic, value, [*pairs, ("x-bin", b"\xff\xfe\x00")]).data
    with pytest.raises(MalformedEvent, match="not UTF-8"):
        decode(topic, value, [*pairs[1:], (pairs[0][0], b"\xff\xfe")])

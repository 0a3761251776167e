"""Every topic has a payload model, and every model has a valid, exact sample."""

import pytest
from pydantic import ValidationError

from switchboard_contracts.calls import CallReceived
from switchboard_contracts.envelope import EventPayload
from switchboard_contracts.notes import NoteRated
from switchboard_contracts.registry import PAYLOAD_MODELS, PAYLOADS_BY_TYPE, payload_model
from switchboard_contracts.samples import SAMPLE_DATA, sample_event, sample_key, sample_payload
from switchboard_contracts.topics import EVENT_TOPICS


def test_every_event_topic_has_a_payload_model() -> None:
    assert sorted({m.topic for m in PAYLOAD_MODELS}) == sorted(EVENT_TOPICS)


def test_event_types_are_unique_and_look_up_their_model() -> None:
    assert len(PAYLOADS_BY_TYPE) == len(PAYLOAD_MODELS)
    for model in PAYLOAD_MODELS:
        assert payload_model(model.event_type()) is model
        assert model.event_type() == f"org.switchboard.{model.topic}.v{model.version}"


def test_unknown_event_type_has_no_model() -> None:
    assert payload_model("org.switchboard.call.received.v99") is None


def test_every_model_has_exactly_one_sample() -> None:
    assert sorted(SAMPLE_DATA) == sorted(sample_key(m) for m in PAYLOAD_MODELS)


@pytest.mark.parametrize("model", PAYLOAD_MODELS, ids=lambda m: m.topic)
def test_sample_names_only_fields_of_its_model(model: type[EventPayload]) -> None:
    """A misspelt optional field would be silently ignored; samples must not rely on that."""
    assert set(SAMPLE_DATA[sample_key(model)]) <= set(model.model_fields)


@pytest.mark.parametrize("model", PAYLOAD_MODELS, ids=lambda m: m.topic)
def test_sample_survives_a_json_round_trip(model: type[EventPayload]) -> None:
    payload = sample_payload(model)
    assert model.model_validate_json(payload.model_dump_json()) == payload


def test_sample_overrides_replace_fields_and_are_validated() -> None:
    assert sample_payload(NoteRated, score=2).score == 2
    with pytest.raises(ValidationError):
        sample_payload(NoteRated, score=6)


def test_sample_event_wraps_the_payload_for_its_tenant() -> None:
    event = sample_event(CallReceived, tenant_id="t-2")
    assert event.tenantid == "t-2"
    assert event.type == CallReceived.event_type()
    assert event.topic == "call.received"

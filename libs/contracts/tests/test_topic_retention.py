"""Kafka keeps no message longer than the shortest retention period of what it carries."""

from __future__ import annotations

import pytest

from switchboard_contracts.topics import (
    ALL_TOPICS,
    CALL_RECEIVED,
    DSR_FRAGMENT,
    EVENT_TOPICS,
    RETENTION_DAYS,
    TENANT_CHANGED,
    dead_letter_topic,
    retention_ms,
    topic_config,
)

DAY_MS = 24 * 3600 * 1000


def test_every_event_topic_has_a_retention_period() -> None:
    assert set(RETENTION_DAYS) == set(EVENT_TOPICS)


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_r_ret_1_no_topic_keeps_messages_longer_than_call_data(topic: str) -> None:
    config = topic_config(topic)
    assert config["cleanup.policy"] == "delete"
    assert int(config["retention.ms"]) <= 90 * DAY_MS
    # whole segments are deleted: a week-long default segment kept records a week too long
    assert int(config["segment.ms"]) <= DAY_MS


def test_r_ret_2_topics_with_recordings_or_subjects_keep_30_days_and_dlqs_follow() -> None:
    for topic in (CALL_RECEIVED, DSR_FRAGMENT):
        assert retention_ms(topic) == 30 * DAY_MS
        assert retention_ms(dead_letter_topic(topic)) == 30 * DAY_MS
    assert retention_ms(TENANT_CHANGED) == 90 * DAY_MS


def test_a_topic_outside_the_contract_keeps_the_brokers_defaults() -> None:
    assert topic_config("bench.baseline.calls") == {}

"""A service wakes its outbox relay by naming the collections it wrote (issue 7)."""

from __future__ import annotations

import logging

import pytest

from switchboard_platform.runtime import ServiceRuntime
from switchboard_platform.settings import ServiceSettings


def _runtime() -> ServiceRuntime:
    return ServiceRuntime(
        "docs-test", ServiceSettings(environment="test"), outbox_collections=("notes",)
    )


def test_a_wake_up_bound_at_start_up_must_name_an_outbox_collection() -> None:
    """A misspelt collection fails at start-up, not by events waiting for the next poll."""
    runtime = _runtime()
    runtime.outbox_notifier("notes")()  # no relay before start: nothing to wake
    with pytest.raises(ValueError, match="'note'"):
        runtime.outbox_notifier("note")
    with pytest.raises(ValueError, match="'calls'"):
        runtime.outbox_notifier("notes", "calls")


def test_a_wake_up_after_a_write_logs_an_unknown_name_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`notify_outbox` runs after the write: raising would answer 500 for a stored change."""
    runtime = _runtime()
    with caplog.at_level(logging.ERROR):
        runtime.notify_outbox("notes", "calls")
    (record,) = [r for r in caplog.records if "unknown collections" in r.getMessage()]
    assert record.__dict__["collections"] == ["calls"]
    caplog.clear()
    runtime.notify_outbox("notes")
    assert not caplog.records

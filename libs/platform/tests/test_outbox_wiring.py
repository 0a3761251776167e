"""A service wakes its outbox relay by naming the collections it wrote (issue 7)."""

from __future__ import annotations

import pytest

from switchboard_platform.runtime import ServiceRuntime
from switchboard_platform.settings import ServiceSettings


def test_an_outbox_wake_up_must_name_an_outbox_collection_of_the_service() -> None:
    """A misspelt collection fails at start-up, not by events waiting for the next poll."""
    runtime = ServiceRuntime(
        "docs-test", ServiceSettings(environment="test"), outbox_collections=("notes",)
    )
    runtime.outbox_notifier("notes")()  # no relay before start: nothing to wake
    with pytest.raises(ValueError, match="'note'"):
        runtime.outbox_notifier("note")
    with pytest.raises(ValueError, match="'calls'"):
        runtime.notify_outbox("notes", "calls")

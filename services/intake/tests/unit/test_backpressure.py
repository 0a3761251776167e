"""Intake's push-back decision without servers: what counts as notes' backlog (issue 7)."""

from __future__ import annotations

import pytest

from switchboard_intake.backpressure import DownstreamLag
from switchboard_intake.config import IntakeSettings
from switchboard_platform.errors import Unavailable

LIMIT = 10


def _watch(unpublished: int) -> DownstreamLag:
    async def count(cap: int) -> int:
        return min(cap, unpublished)

    settings = IntakeSettings(environment="test")
    return DownstreamLag(settings, groups=["notes.call.received"], limit=LIMIT, unpublished=count)


async def test_calls_still_in_intakes_outbox_count_toward_the_limit() -> None:
    watch = _watch(unpublished=LIMIT + 5)
    watch.lag = 0  # notes has consumed everything intake managed to publish
    await watch._count_unpublished()
    assert watch.unpublished == LIMIT + 1  # counted only as far as the decision needs
    with pytest.raises(Unavailable) as refused:
        watch.check()
    assert 1 <= refused.value.retry_after_s <= 30


async def test_below_the_limit_together_captures_are_accepted() -> None:
    watch = _watch(unpublished=4)
    watch.lag = LIMIT - 4
    await watch._count_unpublished()
    watch.check()  # 6 + 4 = the limit: not over it


async def test_an_unknown_lag_refuses_nothing_whatever_the_outbox_holds() -> None:
    """Kafka unreachable: intake keeps capturing into its outbox (decision 0003)."""
    watch = _watch(unpublished=LIMIT * 100)
    watch.lag = None
    await watch._count_unpublished()
    assert watch.unpublished == 0
    watch.check()

"""Helpers of the retention tests: settings of an app of its own, polling, headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header
from switchboard_retention.config import RetentionSettings

T = TypeVar("T")
OPERATOR = auth_header("operator", sub="op-1")


def retention_settings(servers: ServerEndpoints, **overrides: Any) -> RetentionSettings:
    """A retention app of its own: database, consumer groups; sweeps only on demand."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_consumer_group_prefix": f"retention-{suffix}",
        "sweep_interval_s": 0,
        "check_interval_s": 0.2,
        **overrides,
    }
    return service_settings(RetentionSettings, servers, f"retention_{suffix}", **values)


async def until(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0, every_s: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(every_s)

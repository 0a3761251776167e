"""Waiting, from a test's own thread or event loop, for something real processes do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], *, timeout_s: float, what: str, every_s: float = 0.2
) -> T:
    """Call `check` until it returns something truthy, and return that; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every_s)
    return found


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float, every_s: float = 0.1
) -> T:
    """Await `check` until it returns something truthy, and return that; `TimeoutError`
    after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while not (found := await check()):  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(every_s)
        return found

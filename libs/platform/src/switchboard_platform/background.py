"""Background loops that stop when asked, whatever the libraries they call do.

A loop's catch-all (`except Exception`, so a lost database does not end it) must not outlive
a cancellation that a library underneath turned into an error of its own: the task is then
"cancelling" but runs on, and a shutdown that awaits it hangs for ever, SIGTERM included
(seen in retention and crm-sync started on a port in use while MongoDB was away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
FAILING_CHECK_S = 0.2
"""How often a stop that waits for work in hand asks whether that work fails (an attempt
fails only when its operation times out, which may come after the stop began)."""


def stop_requested() -> bool:
    """Whether the running task was asked to stop (a catch-all re-raises then)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_task(task: asyncio.Task[None] | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Cancel `task` and wait for it, at most `timeout_s`: a shutdown never hangs on it."""
    if task is None or task.done():
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.error("background task did not stop; left behind", extra={"task": task.get_name()})
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()

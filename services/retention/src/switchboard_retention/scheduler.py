"""The retention service's clock: scheduled sweeps, answer deadlines, gauges, in one loop."""

from __future__ import annotations

import asyncio
import logging
import time

from switchboard_platform.background import stop_requested, stop_task
from switchboard_platform.consumer import is_transient_error

from .domain import utc_now
from .service import RetentionService
from .subject_requests import DsrService

log = logging.getLogger(__name__)


class Scheduler:
    """Every `check_interval_s`: the interval's sweep if none ran, deadlines, gauges; every
    `verify_interval_s` (and first at start) the receipt chain, so a broken one is found
    without anyone asking (R-RET-6, R-SEC-4)."""

    def __init__(
        self,
        retention: RetentionService,
        requests: DsrService,
        *,
        sweep_interval_s: int,
        check_interval_s: float,
        verify_interval_s: int = 0,
    ) -> None:
        self._retention = retention
        self._requests = requests
        self._sweep_interval_s = sweep_interval_s
        self._check_interval_s = check_interval_s
        self._verify_interval_s = verify_interval_s
        self._verified_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the loop in the background."""
        self._task = asyncio.create_task(self._run(), name="retention-scheduler")

    async def stop(self) -> None:
        """Stop the loop (a pass in progress is cancelled; the next start repeats it)."""
        task, self._task = self._task, None
        await stop_task(task)

    @property
    def running(self) -> bool:
        """Whether the loop is alive."""
        return self._task is not None and not self._task.done()

    async def once(self) -> None:
        """One pass: sweep if this interval has none, then deadlines and gauges."""
        now = utc_now()
        await self._verify_when_due()  # first: a failing step below must not keep it from running
        if self._sweep_interval_s > 0:
            await self._retention.scheduled_sweep(now, self._sweep_interval_s)
        await self._retention.tick(now)
        await self._requests.tick(now)

    async def _verify_when_due(self) -> None:
        started = time.monotonic()
        if self._verify_interval_s <= 0 or (
            self._verified_at is not None and started - self._verified_at < self._verify_interval_s
        ):
            return
        try:
            await self._retention.verify_receipts()
        except Exception as exc:
            if stop_requested():
                raise asyncio.CancelledError from exc
            log.warning("receipt chain not verified; trying again", exc_info=True)
            return
        self._verified_at = started

    async def _run(self) -> None:
        while True:
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop outlives a lost database; the probe shows it
                if stop_requested():
                    raise asyncio.CancelledError from exc
                level = logging.WARNING if is_transient_error(exc) else logging.ERROR
                log.log(level, "scheduler pass failed", exc_info=True)
            await asyncio.sleep(self._check_interval_s)

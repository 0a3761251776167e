"""The background transfer loop: due transfers, connector by connector, never one blocking all.

Kafka handlers only store transfers and wake the loop; they never wait for a CRM. The loop
asks which connectors have transfers due, skips those paused (a rate limit, an open
circuit) or needing attention (refused credentials), and claims a few of each — at most
`connector_concurrency` in flight per connector (one while its circuit is half-open) and
`max_in_flight` in all — so a slow or throttled CRM holds only its own tenant's transfers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable

from switchboard_platform.background import stop_requested, stop_task
from switchboard_platform.logs import log_scope
from switchboard_platform.mongo import Document

from .config import CrmSyncSettings
from .connector_store import ConnectorStore
from .delivery import Delivery
from .retry import Breaker
from .transfer_store import TransferStore

log = logging.getLogger(__name__)
STOP_WAIT_S = 5.0
COALESCE_S = 0.01


class TransferLoop:
    """Runs due transfers in the background of one process."""

    def __init__(
        self,
        *,
        settings: CrmSyncSettings,
        transfers: TransferStore,
        connectors: ConnectorStore,
        delivery: Delivery,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._transfers = transfers
        self._connectors = connectors
        self._delivery = delivery
        self._clock = clock
        self._breaker = Breaker(settings.breaker_threshold, settings.breaker_open_s)
        self._wake = asyncio.Event()
        self._in_flight: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._turn = 0
        self.healthy = True

    def start(self) -> None:
        """Begin looking for due transfers."""
        self._main = asyncio.create_task(self._run(), name="crm-sync:transfers")

    def wake(self) -> None:
        """New or changed transfers: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; let attempts in flight finish briefly, then cancel the rest.

        A cancelled attempt stays claimed until its lease ends; then any replica takes it up.
        """
        main, self._main = self._main, None
        await stop_task(main)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        poll = self._settings.poll_interval_s
        while True:
            self._wake.clear()
            try:
                await self._fill()
                self.healthy = True
            except Exception as exc:
                if stop_requested():
                    raise asyncio.CancelledError from exc
                self.healthy = False
                log.exception("transfer loop could not claim transfers; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)
            await asyncio.sleep(COALESCE_S)  # one look for several wake-ups

    async def _fill(self) -> None:
        free = self._settings.max_in_flight - len(self._tasks)
        if free <= 0:
            return
        now = self._clock()
        order = await self._transfers.due_connectors(now)
        if not order:
            return
        connectors = await self._connectors.by_ids(order, with_credentials=True)
        self._turn = (self._turn + 1) % len(order)
        for cid in order[self._turn :] + order[: self._turn]:  # no connector always first
            connector = connectors.get(cid)
            count = min(self._capacity(connector, now) - self._in_flight[cid], free)
            if count <= 0:
                continue
            claimed = await self._transfers.claim(
                cid,
                now=now,
                count=count,
                lease_until=now + self._settings.transfer_lease_s,
                token=secrets.token_hex(8),
            )
            for doc in claimed:
                self._spawn(cid, doc, connector)
            free -= len(claimed)
            if free <= 0:
                return

    def _capacity(self, connector: Document | None, now: float) -> int:
        """How many of a connector's transfers may be in flight now."""
        concurrency = self._settings.connector_concurrency
        if connector is None or not connector.get("enabled"):
            return concurrency  # claimed only to be closed: the connector is gone or off
        if connector.get("attention") or float(connector.get("paused_until") or 0) > now:
            return 0
        return self._breaker.allowed_in_flight(
            int(connector.get("failures_in_a_row") or 0), concurrency
        )

    def _spawn(self, cid: str, doc: Document, connector: Document | None) -> None:
        self._in_flight[cid] += 1
        task = asyncio.create_task(self._attempt(cid, doc, connector), name="crm-sync:transfer")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, cid: str, doc: Document, connector: Document | None) -> None:
        try:
            with log_scope(doc["tenant_id"]):
                await self._delivery.run(doc, connector)
        except asyncio.CancelledError:
            raise
        except Exception:
            # the claim lapses after its lease and the transfer is tried again
            log.exception("transfer attempt broke off", extra={"transfer_id": doc["_id"]})
        finally:
            self._in_flight[cid] -= 1
            if self._in_flight[cid] <= 0:
                del self._in_flight[cid]
            self.wake()

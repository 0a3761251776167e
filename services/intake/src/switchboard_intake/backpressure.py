"""Intake pushes back when the consumers of its calls fall behind (issue 7 §1).

Every second the monitor asks Kafka how far each consumer group named in
`INTAKE_BACKPRESSURE_GROUPS` (notes' by default) is behind the end of `call.received`. Past
`INTAKE_MAX_DOWNSTREAM_LAG` events, a capture answers 503 with a `Retry-After` estimated from
how fast the group is catching up; the agent's client retries with its Idempotency-Key.
Calls intake accepted but has not published yet (its own outbox, when the relay falls
behind on a busy machine) count too: they are notes' backlog as much as the topic's. An
unknown lag (Kafka unreachable, a group that never committed) refuses nothing: during a
broker outage intake keeps capturing into its outbox (docs/decisions/0003).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

from switchboard_contracts.topics import CALL_RECEIVED
from switchboard_platform.errors import Unavailable
from switchboard_platform.kafka import client_security, stop_consumer
from switchboard_platform.settings import ServiceSettings

log = logging.getLogger(__name__)

DOWNSTREAM_LAG = Gauge(
    "switchboard_intake_downstream_lag_messages",
    "call.received events a consumer group has not committed yet (-1: unknown)",
    ["group"],
)
UNPUBLISHED = Gauge(
    "switchboard_intake_unpublished_calls",
    "Accepted calls still in intake's outbox, counted up to the push-back limit",
)
MIN_RETRY_S, MAX_RETRY_S = 1, 30


class DownstreamLag:
    """Watches how far behind `call.received`'s consumer groups are."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        groups: Sequence[str],
        limit: int,
        interval_s: float = 1.0,
        topic: str = CALL_RECEIVED,
        unpublished: Callable[[int], Awaitable[int]] | None = None,
    ) -> None:
        self._settings = settings
        self._groups = tuple(groups)
        self._limit = limit
        self._interval_s = interval_s
        self._topic = topic
        self._unpublished = unpublished
        self._task: asyncio.Task[None] | None = None
        self.lag: int | None = None
        self.unpublished = 0  # calls in intake's outbox, counted up to the limit + 1
        self._rate = 0.0  # events per second the slowest group committed lately
        self._last: tuple[float, int] | None = None  # (when, its committed total)

    @property
    def enabled(self) -> bool:
        """Whether captures can be refused at all (a limit and a group to watch)."""
        return self._limit > 0 and bool(self._groups)

    def check(self) -> None:
        """Raise Unavailable (503) when the watched consumers are too far behind."""
        if not self.enabled or self.lag is None:
            return
        backlog = self.lag + self.unpublished
        if backlog <= self._limit:
            return
        excess = backlog - self._limit
        wait = excess / self._rate if self._rate > 0 else MAX_RETRY_S
        retry = int(min(MAX_RETRY_S, max(MIN_RETRY_S, wait)))
        raise Unavailable(
            "call notes are being processed with a delay; retry shortly", retry_after_s=retry
        )

    def start(self) -> None:
        """Poll in the background."""
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="downstream-lag")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        kwargs = {
            "bootstrap_servers": self._settings.kafka_bootstrap_servers,
            "request_timeout_ms": 5000,
            **client_security(self._settings),
        }
        admin = AIOKafkaAdminClient(**kwargs)
        ends = AIOKafkaConsumer(enable_auto_commit=False, **kwargs)
        started = False
        try:
            while True:
                try:
                    if not started:
                        await admin.start()
                        await ends.start()
                        started = True
                    self._observe(*await self._measure(admin, ends))
                    await self._count_unpublished()
                except asyncio.CancelledError:
                    raise
                except Exception:  # Kafka away: the lag is unknown, nothing is refused
                    self._observe(None, None)
                    log.debug("downstream lag unknown", exc_info=True)
                await asyncio.sleep(self._interval_s)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
            with contextlib.suppress(Exception):
                await stop_consumer(ends)

    async def _measure(
        self, admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer
    ) -> tuple[int | None, int | None]:
        """(lag, committed total) of the group furthest behind; (None, None) if unknown."""
        partitions = [
            TopicPartition(self._topic, p) for p in ends.partitions_for_topic(self._topic) or ()
        ]
        if not partitions:
            await ends.topics()
            return None, None
        end_offsets = await ends.end_offsets(partitions)
        worst: tuple[int, int] | None = None
        for group in self._groups:
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            known = {tp: c.offset for tp, c in committed.items() if c.offset >= 0}
            if not known:
                DOWNSTREAM_LAG.labels(group=group).set(-1)
                continue
            lag = sum(max(0, end_offsets[tp] - known.get(tp, end_offsets[tp])) for tp in partitions)
            DOWNSTREAM_LAG.labels(group=group).set(lag)
            if worst is None or lag > worst[0]:
                worst = (lag, sum(known.values()))
        return (worst[0], worst[1]) if worst else (None, None)

    async def _count_unpublished(self) -> None:
        """How many accepted calls wait in the outbox (capped: the limit is all that matters)."""
        if self._unpublished is None or self.lag is None:
            self.unpublished = 0
        else:
            self.unpublished = await self._unpublished(self._limit + 1)
        UNPUBLISHED.set(self.unpublished)

    def _observe(self, lag: int | None, committed: int | None) -> None:
        now = time.monotonic()
        if committed is not None and self._last is not None:
            elapsed = now - self._last[0]
            if elapsed > 0:
                rate = max(0, committed - self._last[1]) / elapsed
                self._rate = 0.7 * self._rate + 0.3 * rate
        self._last = (now, committed) if committed is not None else None
        self.lag = lag

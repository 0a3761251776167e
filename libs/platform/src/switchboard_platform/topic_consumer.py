"""One topic's consumer in one process: partitions handled concurrently, each in order.

A single aiokafka consumer (one group member, one static `group.instance.id` per replica
and topic) fetches; each partition gets its own queue and worker, and at most
`KAFKA_CONSUMER_WORKERS` records are handled at once. Order within a partition — so within
a tenant, the partition key — is kept: a partition's next record starts only after the
previous one is handled (or dead-lettered).

Offsets are committed explicitly and only for handled records, every
`KAFKA_COMMIT_INTERVAL_MS` (all partitions in one request), when partitions are revoked in
a rebalance, and on shutdown. A crash therefore redelivers at most one interval's worth of
handled records, which idempotent handlers absorb (docs/decisions/0008).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from switchboard_contracts.topics import CALL_RECEIVED, NOTE_CREATED

from .background import FAILING_CHECK_S
from .consumer import EventPipeline, RawRecord
from .group_member import MemberRecord, current_member_id, remove_member
from .kafka import client_security, stop_consumer
from .metrics import CONSUMER_COMMITS, CONSUMER_EVENT_TIME, CONSUMER_LAG
from .settings import ServiceSettings

log = logging.getLogger(__name__)

MAX_QUEUED_PER_PARTITION = 500
"""Fetched records waiting per partition before the partition is paused (backpressure)."""
FETCH_MAX_RECORDS = 500
REVOKE_WAIT_S = 10.0
STOP_TIMEOUT_S = 2.0


@dataclass
class _Partition:
    """What this process holds of one assigned partition."""

    tp: TopicPartition
    queue: deque[ConsumerRecord[bytes, bytes]] = field(default_factory=deque)
    next_offset: int | None = None  # after the last record queued: older ones are repeats
    handled: int | None = None  # after the last record handled: what may be committed
    committed: int | None = None
    worker: asyncio.Task[None] | None = None
    paused: bool = False
    short_since: float | None = None  # when its log was first seen ending below what was read


TRUNCATION_CONFIRM_S = 10.0
"""How long a partition's log must end below what was read of it before it is read again: a
new leader's high watermark can lag the old one's for a moment (KIP-207); a lost log stays."""
WORKER_MAX_BACKOFF_S = 5.0
"""The longest a partition worker waits before it tries a record its pipeline broke on again."""
HOT_TOPICS = frozenset({CALL_RECEIVED, NOTE_CREATED})
"""Topics a flow waits on (a call becoming a note, a note reaching the client)."""


def fetch_wait_ms(topic: str, settings: ServiceSettings) -> int:
    """`KAFKA_FETCH_MAX_WAIT_MS` for the hot topics, the (longer) background wait for others."""
    if topic in HOT_TOPICS:
        return settings.kafka_fetch_max_wait_ms
    return max(settings.kafka_fetch_max_wait_ms, settings.kafka_background_fetch_max_wait_ms)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TopicConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner.release(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._owner.assigned(list(assigned))
        self._owner.remember_member()
        log.info(
            "partitions assigned",
            extra={
                "topic": self._owner.topic,
                "partitions": sorted(tp.partition for tp in assigned),
            },
        )


class TopicConsumer:
    """Feeds one topic's records to one pipeline, partitions in parallel, commits coalesced."""

    def __init__(
        self,
        pipeline: EventPipeline[Any],
        *,
        group_id: str,
        settings: ServiceSettings,
        client_id: str,
    ) -> None:
        self.topic = pipeline.topic
        self.group_id = group_id
        self._pipeline = pipeline
        self._settings = settings
        self._client_id = client_id
        self._slots = asyncio.Semaphore(settings.kafka_consumer_workers)
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._fetcher: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._stopping = False
        self.joined = False
        self.truncation_confirm_s = TRUNCATION_CONFIRM_S
        self._commit_lock = asyncio.Lock()
        self._member_record = (
            MemberRecord(settings.state_dir, group_id)
            if settings.state_dir is not None and settings.kafka_group_instance_id is None
            else None
        )

    def _instance_id(self) -> str | None:
        base = self._settings.kafka_group_instance_id
        return f"{base}-{self.topic}" if base else None

    async def start(self) -> None:
        """Join the group and fetch, in the background: the service serves meanwhile.

        A group join takes a while (half the session timeout on the embedded broker), and
        Kafka may be down when the process starts: `joined` says when it is consuming, and
        a failed start is retried with backoff.
        """
        self._consumer = self._build()
        self._fetcher = asyncio.create_task(self._join_then_fetch(), name=f"fetch:{self.topic}")

    def _build(self) -> AIOKafkaConsumer:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=self._client_id,
            group_id=self.group_id,
            group_instance_id=self._instance_id(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_wait_ms(self.topic, settings),
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(settings.kafka_session_timeout_ms // 4, 500),
            rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
            max_poll_interval_ms=max(300_000, settings.kafka_rebalance_timeout_ms),
            **client_security(settings),
        )
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        return consumer

    async def _join_then_fetch(self) -> None:
        assert self._consumer is not None
        backoff = 0.5
        while not self.joined:
            try:
                await self._remove_predecessor()
                await self._consumer.start()
                self.joined = True
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError):
                log.warning("could not join %s; retrying in %.1fs", self.group_id, backoff)
                with contextlib.suppress(Exception):
                    await self._consumer.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                self._consumer = self._build()
        if self._settings.kafka_commit_interval_ms > 0:
            self._committer = asyncio.create_task(self._commit_loop(), name=f"commit:{self.topic}")
        await self._fetch_loop()

    async def _remove_predecessor(self) -> None:
        """Free the place a crashed process of this replica left in the group, if any.

        Without it, the group waits out the dead member's session before it settles and
        hands this process its partitions (docs/decisions/0016).
        """
        if self._member_record is None:
            return
        member_id = self._member_record.read()
        if member_id is None:
            return
        try:
            await remove_member(
                self.group_id,
                member_id,
                bootstrap_servers=self._settings.kafka_bootstrap_servers,
                security=client_security(self._settings),
            )
        except (KafkaError, OSError, TimeoutError):
            log.warning("could not remove the previous member of %s", self.group_id)
            return  # the join goes on; the dead member's session ends it eventually
        self._member_record.clear()

    def remember_member(self) -> None:
        """Record the member id the group knows this process by (after each assignment)."""
        if self._member_record is None or self._consumer is None:
            return
        member_id = current_member_id(self._consumer)
        if member_id is not None:
            self._member_record.write(member_id)

    @property
    def running(self) -> bool:
        """Whether it joined its group and the fetch loop is alive."""
        return self.joined and self._fetcher is not None and not self._fetcher.done()

    async def stop(self, *, timeout_s: float = 15.0) -> None:
        """Stop fetching, let the records in hand finish (bounded; not one whose handling
        fails), commit, leave."""
        self._stopping = True
        for task in (self._fetcher, self._committer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        workers = [p.worker for p in self._partitions.values() if p.worker and not p.worker.done()]
        for part in self._partitions.values():
            # what was fetched but not started comes again after a restart; the record in
            # hand stays at the head of its queue, so that finishing it commits it
            in_hand = part.queue[0] if part.queue and part.worker in workers else None
            part.queue.clear()
            if in_hand is not None:
                part.queue.append(in_hand)
        if workers:
            await self._finish_in_hand(timeout_s)
        if self.joined:
            await self.commit()
        if self._consumer is not None:
            # A consumer still joining its group (half a session on the embedded broker)
            # would hold the shutdown until the join ends: give it a moment, no more.
            try:
                stopped = await asyncio.wait_for(stop_consumer(self._consumer), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("consumer did not leave its group in time", extra={"topic": self.topic})
            else:
                if stopped and self._member_record is not None:
                    self._member_record.clear()  # it left: nothing for a restart to remove
            self._consumer = None

    async def _finish_in_hand(self, timeout_s: float) -> None:
        """Wait for the records in hand, at most `timeout_s`, but not for one whose handling
        fails (the database away): it cannot finish, and it comes again after the restart,
        as after a crash (each handler is idempotent), so a shutdown stays within its grace.
        Asked again every `FAILING_CHECK_S`: an attempt fails only once its operation times
        out, which may come after the stop began."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hands = {p.worker: p for p in self._partitions.values() if p.worker and not p.worker.done()}
        pending = set(hands)
        try:
            while pending and (left := deadline - loop.time()) > 0:
                for worker in pending:
                    if self._failing(hands[worker]):
                        worker.cancel()
                _, pending = await asyncio.wait(pending, timeout=min(FAILING_CHECK_S, left))
        finally:
            for worker in pending:
                worker.cancel()
        await asyncio.gather(*hands, return_exceptions=True)

    def _failing(self, part: _Partition) -> bool:
        return bool(part.queue) and self._pipeline.retrying(part.tp.partition, part.queue[0].offset)

    # fetching -----------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self._stopping:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=FETCH_MAX_RECORDS)
            except asyncio.CancelledError:
                raise
            except KafkaError:
                log.warning("fetch failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            await self._restart_truncated(consumer)
            for tp, records in batches.items():
                self._enqueue(tp, records)
            self._update_lag()

    async def _restart_truncated(self, consumer: AIOKafkaConsumer) -> None:
        """Read a partition again from its start when its log ends below what this process
        has seen of it: the broker lost its log (an embedded broker restarted empty) or the
        topic was recreated. Its new records would otherwise sit below `next_offset` and be
        skipped as repeats (or, where the broker does not answer OffsetOutOfRange, never be
        fetched), silently; idempotent handlers make a second reading harmless. The log must
        stay short for `truncation_confirm_s` first (a leader change can lower the high
        watermark for a moment). Not caught: a new log that grew past the old position before
        it was fetched (its first records are skipped); Kafka keeps its log, so only a broker
        that lost it, or a topic deleted and created again, can do that."""
        now = time.monotonic()
        for tp in consumer.assignment():
            part = self._partitions.get(tp)
            highwater = consumer.highwater(tp)
            if part is None or highwater is None:
                continue
            seen = max(part.next_offset or 0, part.handled or 0)
            if highwater >= seen:
                part.short_since = None
                continue
            if part.short_since is None:
                part.short_since = now
            if now - part.short_since < self.truncation_confirm_s:
                continue
            part.short_since = None
            log.error(
                "partition log ends below what was read of it; reading it again from its start",
                extra={"topic": tp.topic, "partition": tp.partition, "log_end": highwater},
            )
            part.queue.clear()
            part.next_offset = part.handled = part.committed = None
            if part.paused:
                self._resume(part)
            await consumer.seek_to_beginning(tp)

    def _enqueue(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition(tp)
        for record in records:
            if part.next_offset is not None and record.offset < part.next_offset:
                continue  # fetched again after a rebalance: queued or handled already
            part.queue.append(record)
            part.next_offset = record.offset + 1
        if len(part.queue) >= MAX_QUEUED_PER_PARTITION and not part.paused:
            assert self._consumer is not None
            self._consumer.pause(tp)
            part.paused = True
        if part.queue and (part.worker is None or part.worker.done()):
            part.worker = asyncio.create_task(self._work(part), name=f"work:{tp}")

    async def _work(self, part: _Partition) -> None:
        backoff, failing = 0.1, False
        while part.queue:
            record = part.queue[0]
            try:
                async with self._slots:
                    await self._pipeline.process(_raw(record))
            except Exception as exc:  # the pipeline handles every record's faults; if it broke,
                # the partition waits on this record, not ready, rather than die unnoticed
                log.exception("partition worker failed; retrying", extra={"topic": self.topic})
                self._pipeline.stalled(f"worker: {type(exc).__name__}")
                failing = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, WORKER_MAX_BACKOFF_S)
                continue
            if failing:
                backoff, failing = 0.1, False
                self._pipeline.recovered()
            if part.queue and part.queue[0] is record:  # not dropped by a revocation meanwhile
                part.queue.popleft()
                part.handled = record.offset + 1
                if record.timestamp is not None and record.timestamp > 0:
                    CONSUMER_EVENT_TIME.labels(
                        service=self._pipeline.service, topic=self.topic
                    ).set(record.timestamp / 1000)
            if self._settings.kafka_commit_interval_ms == 0:
                await self.commit()
            if part.paused and len(part.queue) <= MAX_QUEUED_PER_PARTITION // 2:
                self._resume(part)

    def _resume(self, part: _Partition) -> None:
        if self._consumer is not None and part.tp in self._consumer.assignment():
            self._consumer.resume(part.tp)
        part.paused = False

    def _update_lag(self) -> None:
        if self._consumer is None:
            return
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            part = self._partitions.get(tp)
            position = part.handled if part is not None else None
            if position is None and (part is None or not part.queue):
                position = highwater  # fetched to the end with nothing to handle: caught up
            if highwater is None or position is None:
                continue
            CONSUMER_LAG.labels(
                service=self._pipeline.service, topic=self.topic, partition=str(tp.partition)
            ).set(max(0, highwater - position))

    # committing ---------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        interval = self._settings.kafka_commit_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self.commit()

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit the handled offsets not committed yet (of `partitions`, or all)."""
        if self._consumer is None:
            return
        chosen = self._partitions.keys() if partitions is None else partitions
        # never for a partition this process no longer owns: it could move the offset back
        owned = set(self._consumer.assignment()) | set(partitions or ())
        wanted = [self._partitions[tp] for tp in chosen if tp in self._partitions and tp in owned]
        offsets = {
            p.tp: p.handled for p in wanted if p.handled is not None and p.handled != p.committed
        }
        if not offsets:
            return
        async with self._commit_lock:
            try:
                await self._consumer.commit(offsets)
            except KafkaError:  # a rebalance under way: the records come again, idempotently
                log.warning("offset commit failed", exc_info=True)
                return
        for tp, offset in offsets.items():
            self._partitions[tp].committed = offset
        CONSUMER_COMMITS.labels(service=self._pipeline.service, topic=self.topic).inc()

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """After a rebalance: each partition continues wherever the group's offset says.

        That may lie behind what this process saw before (another member's uncommitted
        work, or a broker that lost its log): nothing fetched from now on is a repeat.
        """
        for tp in partitions:
            part = self._partitions.get(tp)
            if part is not None:
                part.next_offset = None
                part.handled = part.committed = None

    async def release(self, revoked: list[TopicPartition]) -> None:
        """Before a rebalance: drop what is queued, finish what is in hand, commit, forget."""
        parts = [self._partitions[tp] for tp in revoked if tp in self._partitions]
        started = time.monotonic()
        for part in parts:
            if part.queue:
                in_hand = part.queue.popleft()
                part.queue.clear()
                part.queue.append(in_hand)  # the worker finishes this one, then stops
        workers = [p.worker for p in parts if p.worker is not None and not p.worker.done()]
        if workers:
            _, pending = await asyncio.wait(workers, timeout=REVOKE_WAIT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.commit(revoked)
        for part in parts:
            part.queue.clear()
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self._pipeline.service, self.topic, str(part.tp.partition))
        log.info(
            "partitions revoked",
            extra={
                "topic": self.topic,
                "partitions": sorted(tp.partition for tp in revoked),
                "wait_ms": round((time.monotonic() - started) * 1000),
            },
        )


def _raw(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    # Kafka allows a header without a value (aiokafka gives None): read it as empty
    headers = tuple((k, b"" if v is None else bytes(v)) for k, v in (record.headers or ()))
    return RawRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=headers,
    )

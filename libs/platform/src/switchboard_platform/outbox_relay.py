"""The outbox relay: one replica at a time publishes a service's pending events, in order.

Every replica runs a relay; a lease in the service's database (`_outbox_lease`) lets one
publish while the others stand by, so per-tenant order holds however many replicas run
(docs/decisions/0009). The holder renews the lease every third of `OUTBOX_LEASE_S`; a
killed holder's lease runs out and a standby takes over. A replica with a state directory
(`SWITCHBOARD_STATE_DIR`) holds the lease under an owner id kept there, so its own process
restarted after a crash takes the lease back at once instead of waiting for it to run out.
The holder wakes at once on its own process's writes and polls (`OUTBOX_POLL_INTERVAL_S`)
for the other replicas' writes; a collection it has lately found other replicas' events in
it reads five times as often (their writes do not wake it).

A batch that fails for a transient reason (broker down) is retried with backoff and the
relay reports itself unhealthy. The publish timeout must exceed the producer's request
timeout, so every send has failed or succeeded before the batch is tried again (an
abandoned send would still go out later, and pile up behind the retries).

A batch that fails for a permanent reason (an oversized or malformed entry) is retried
entry by entry: the other tenants' events go on, the failing
entry's tenant waits, and after `PARK_AFTER` failures the entry is parked (kept in
`_outbox_parked` for an operator, counted in `/metrics`) so its tenant goes on too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError
from opentelemetry import context as otel_context
from opentelemetry import propagate
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from .background import FAILING_CHECK_S, stop_requested
from .kafka import Publisher
from .metrics import (
    OUTBOX_OLDEST_AGE,
    OUTBOX_PARKED,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
    OUTBOX_RELAY_ACTIVE,
)
from .mongo import Document, MongoDatabase
from .outbox import OutboxStore, PendingBatch, PendingEntry, seq_time, written_here
from .state_dir import read_state, write_state

log = logging.getLogger(__name__)

LEASES = "_outbox_lease"
PARK_AFTER = 3
OWNER_FILE = "outbox-relay-owner"


def replica_lease_owner(state_dir: Path | None) -> str:
    """The owner id this replica holds the relay lease under.

    Without a state directory, a fresh id per process. With one, the id kept in it (made on
    first use): the lease of a process of this replica that was killed is then still "ours",
    and its restarted successor renews it at once. The directory must belong to one replica,
    or two replicas would both publish (docs/decisions/0016).
    """
    if state_dir is None:
        return uuid.uuid4().hex
    path = state_dir / OWNER_FILE
    owner = read_state(path)
    if owner is None:
        owner = uuid.uuid4().hex
        write_state(path, owner)  # if it fails, a restart waits for the lease to run out
    return owner


class RelayLease:
    """A time-limited claim on publishing a service's outbox, held by one process."""

    def __init__(self, db: MongoDatabase, ttl_s: float, *, owner: str | None = None) -> None:
        self._leases = db[LEASES]
        self.ttl_s = ttl_s
        self.owner = owner or uuid.uuid4().hex
        self._valid_until = 0.0  # monotonic
        self._renewed_at = 0.0

    @property
    def held(self) -> bool:
        """Whether this process may publish now (with a margin for clock and pauses)."""
        return time.monotonic() < self._valid_until - self.ttl_s * 0.2

    @property
    def renewal_due(self) -> bool:
        """Whether a third of the lease has passed since it was last taken or renewed."""
        return self.renewal_in() <= 0

    def renewal_in(self) -> float:
        """Seconds until the renewal is due (a third of the lease after the last one)."""
        return self._renewed_at + self.ttl_s / 3 - time.monotonic()

    async def acquire(self) -> bool:
        """Take or renew the lease if it is free, expired or ours; True if held now."""
        started = time.monotonic()
        now = time.time()
        claim = {"$set": {"owner": self.owner, "expires_at": now + self.ttl_s}}
        held = await self._leases.update_one({"_id": "relay", "owner": self.owner}, claim)
        if held.matched_count == 0:
            expired = {"_id": "relay", "expires_at": {"$lt": now}}
            held = await self._leases.update_one(expired, claim)
        if held.matched_count == 0:
            try:
                await self._leases.insert_one(
                    {"_id": "relay", "owner": self.owner, "expires_at": now + self.ttl_s}
                )
            except DuplicateKeyError:
                self._valid_until = 0.0
                return False
        self._valid_until = started + self.ttl_s
        self._renewed_at = started
        return True

    async def release(self) -> None:
        """Give the lease up at once, so a standby takes over without waiting for it to expire."""
        self._valid_until = 0.0
        await self._leases.delete_one({"_id": "relay", "owner": self.owner})


RELEASE_TIMEOUT_S = 1.0
"""How long a stopping relay tries to hand its lease on before leaving it to expire."""

ELSEWHERE_POLLS = 5
"""How many times per poll interval the holder reads a collection that other replicas are
writing into: their writes do not wake it, so their events would wait up to a whole poll
interval at each hop (at 20 calls/s with two replicas of intake and notes, a p99 from
capture to `note.created` of 187 ms against 49 with one)."""
ELSEWHERE_FOR_S = 10.0
"""How long after it last found another process's event in a collection the holder keeps
reading that collection often."""

UNREAD_COUNT_INTERVAL_S = 1.0
"""How often a relay working off a backlog counts what it has not read yet (the gauge)."""

_PERMANENT_KAFKA = (MessageSizeTooLargeError, InvalidTopicError)
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, UnicodeError)


def _is_permanent(exc: BaseException) -> bool:
    """Only what retrying cannot fix: an entry too large or malformed, a topic name invalid.

    Anything else — a lost broker, a timeout, and the odd errors a broker answers while it
    restarts (the embedded one says `UnknownError`) — is waited out, never parked.
    """
    return isinstance(exc, (*_PERMANENT_KAFKA, *_MALFORMED)) and not isinstance(exc, OSError)


class OutboxRelay:
    """Publishes the pending events of the given collections, oldest first, then clears them."""

    def __init__(
        self,
        db: MongoDatabase,
        collections: Iterable[str],
        service: str,
        broker: Publisher,
        *,
        poll_interval_s: float = 0.1,
        linger_s: float = 0.0,
        batch_size: int = 500,
        publish_timeout_s: float = 20.0,
        lease_s: float = 10.0,
        lease: RelayLease | None = None,
    ) -> None:
        self._store = OutboxStore(db, collections)
        self._service = service
        self._broker = broker
        self._poll_interval_s = poll_interval_s
        self._linger_s = linger_s
        self._batch_size = batch_size
        self._publish_timeout_s = publish_timeout_s
        self.lease = lease or RelayLease(db, lease_s)
        self._collections = tuple(collections)
        self._wake = asyncio.Event()
        self._hinted: set[str] = set()
        self._read_all_at = float("-inf")  # monotonic time of the last pass over every collection
        self._read_at: dict[str, float] = {}  # monotonic time each collection was last read
        self._standby = False  # found the lease held by another replica at its last try
        self._elsewhere: dict[str, float] = {}  # written by other processes: read often until
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failures: dict[str, int] = {}
        self.healthy = True
        self.pending = 0
        self.parked = 0
        self._unread = (0.0, 0)  # (when counted, documents pending beyond the last batch)

    def notify(self, collection: str, *more: str) -> None:
        """Wake the relay now: a use case has just written events into these collections.

        The woken pass reads only those, so a write costs one read of its own collection,
        not one per collection of the service; every collection is still read at least
        once a poll interval, however often writes wake the relay (other replicas' events,
        and those left by a crash, wait no longer under load than when idle).

        A standby (the lease held by another replica at its last try) is not woken: the
        holder reads its process's writes (within a poll interval), and a standby that
        takes the lease over reads every collection first.
        """
        if self._standby:
            return
        self._hinted.update((collection, *more))
        self._wake.set()

    def start(self) -> None:
        """Run the relay loop in the background."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, *, flush_timeout_s: float = 10.0) -> None:
        """Publish what is pending (bounded by `flush_timeout_s`), stop, hand the lease on."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            await self._flush(task, flush_timeout_s)
        # bounded: without the database the lease expires on its own (ttl_s)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                await self.lease.release()
        OUTBOX_RELAY_ACTIVE.labels(service=self._service).set(0)

    async def _flush(self, task: asyncio.Task[None], timeout_s: float) -> None:
        """Let the stopping relay publish what is pending, at most `timeout_s`, and no longer
        once a pass fails (the database or the broker away): then nothing can be flushed,
        and its pending operation may wait out a connect timeout; the events stay stored
        for the next relay (at least once, as after a crash). Asked again every 0.2 s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while not task.done():
                if not self.healthy:
                    log.warning("outbox relay stopped while failing; pending events stay stored")
                    break
                if (left := deadline - loop.time()) <= 0:
                    log.warning("outbox relay did not flush in time; pending events stay stored")
                    break
                await asyncio.wait({task}, timeout=min(FAILING_CHECK_S, left))
        finally:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # raises if the stop is cancelled

    def info(self) -> dict[str, Any]:
        """What `/readyz` shows of the relay."""
        return {"active": self.lease.held, "pending": self.pending, "parked": self.parked}

    async def _run(self) -> None:
        backoff = 0.1
        with contextlib.suppress(Exception):
            self.parked = await self._store.parked_count()
        while True:
            try:
                if self.lease.renewal_due or not self.lease.held:
                    await self.lease.acquire()
                OUTBOX_RELAY_ACTIVE.labels(service=self._service).set(int(self.lease.held))
                self._standby = not self.lease.held
                if not self.lease.held:
                    self.healthy = True  # a standby is healthy
                    if self._stopping:
                        return
                    # A standby publishes nothing. A wake-up left set (from before it lost the
                    # lease) would end every sleep at once: it would try the lease back to
                    # back, three commands a try.
                    self._wake.clear()
                    self._hinted.clear()
                    await self._sleep(self.lease.ttl_s / 3)
                    continue
                woken = self._wake.is_set()
                if woken and self._linger_s > 0 and not self._stopping:
                    await asyncio.sleep(self._linger_s)  # the next writes join this batch
                # clear before draining: a write notified during the drain wakes the next pass
                self._wake.clear()
                now = time.monotonic()
                only = self._to_read(now, woken)
                self._hinted.clear()
                if only == ():  # woken by the clock for nothing due: sleep on
                    published, more = 0, False
                else:
                    if only is None:
                        self._read_all_at = now
                    for name in only or self._collections:
                        self._read_at[name] = now
                    published, more = await self.drain_once(only)
                self.healthy = True
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any broker or database failure: back off, keep the events
                if stop_requested():
                    raise asyncio.CancelledError from exc
                self.healthy = False
                OUTBOX_PUBLISH_FAILURES.labels(service=self._service).inc()
                if self._stopping and isinstance(exc, ConnectionFailure):
                    # the events are in the database: without it there is nothing to flush,
                    # and the next relay publishes them; a stop need not wait its deadline
                    log.warning("outbox relay stopped without its database; events stay stored")
                    return
                log.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
                # stopping: keep trying until stop()'s flush deadline ends the task
                await asyncio.sleep(min(backoff, 0.5) if self._stopping else backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping and published == 0:
                return
            if more and published > 0:
                continue
            busy = self._written_elsewhere(time.monotonic())
            interval = self._elsewhere_interval_s if busy else self._poll_interval_s
            await self._sleep(min(interval, self.lease.renewal_in()))  # held while idle too

    @property
    def _elsewhere_interval_s(self) -> float:
        return self._poll_interval_s / ELSEWHERE_POLLS

    def _written_elsewhere(self, now: float) -> list[str]:
        """Collections other processes wrote events into lately."""
        return [name for name, until in self._elsewhere.items() if until > now]

    def _to_read(self, now: float, woken: bool) -> tuple[str, ...] | None:
        """The collections this pass reads: None for all (once a poll interval), else those
        its process just wrote into and those other processes write into, when due. A
        stopping relay reads all: it flushes."""
        if self._stopping or now - self._read_all_at >= self._poll_interval_s:
            return None
        due = {
            name
            for name in self._written_elsewhere(now)
            if now - self._read_at.get(name, float("-inf")) >= self._elsewhere_interval_s
        }
        if woken and self._hinted:
            due |= self._hinted
        return tuple(sorted(due))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def drain_once(self, collections: tuple[str, ...] | None = None) -> tuple[int, bool]:
        """Publish one batch of pending events (of `collections`, default all); return how
        many, and whether more wait."""
        batch = await self._store.pending(self._batch_size, collections)
        fast_until = time.monotonic() + ELSEWHERE_FOR_S
        for p in batch.entries:
            if not written_here(p.seq):
                self._elsewhere[p.collection] = fast_until
        self._observe(batch, await self._unread_documents(batch))
        if not batch.entries:
            return 0, False
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await self._publish_all(batch.entries)
            published = batch.entries
        except Exception as exc:
            if not _is_permanent(exc):
                raise
            log.warning(
                "outbox batch failed for a permanent reason; publishing entry by entry",
                extra={"error_kind": type(exc).__name__},
            )
            published = await self._publish_each(batch.entries)
        await self._store.clear(batch, published)
        for p in published:
            self._failures.pop(p.id, None)
            OUTBOX_PUBLISHED.labels(service=self._service, topic=p.entry.get("topic")).inc()
        if not batch.more and len(published) == len(batch.entries):
            self._report(0, 0.0)  # all out: 0 now, not what was read until the next pass
        return len(published), batch.more

    async def _unread_documents(self, batch: PendingBatch) -> int:
        """Documents pending beyond the batch just read: counted at most once a second.

        Only a backlog of more than a batch needs counting, and while the relay works one
        off it drains back to back: a count per drain would cost the database more than the
        drains themselves.
        """
        if not batch.more:
            self._unread = (0.0, 0)
            return 0
        counted_at, unread = self._unread
        now = time.monotonic()
        if now - counted_at >= UNREAD_COUNT_INTERVAL_S:
            unread = max(0, await self._store.pending_documents() - len(batch.last_seen))
            self._unread = (now, unread)
        return unread

    def _observe(self, batch: PendingBatch, unread_documents: int) -> None:
        # not capped by the batch: each document not read holds one event or more
        oldest = seq_time(batch.entries[0].seq) if batch.entries else None
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        self._report(len(batch.entries) + max(0, unread_documents), max(0.0, age))

    def _report(self, pending: int, oldest_age_s: float) -> None:
        self.pending = pending
        OUTBOX_PENDING.labels(service=self._service).set(pending)
        OUTBOX_OLDEST_AGE.labels(service=self._service).set(oldest_age_s)

    async def _publish_all(self, entries: list[PendingEntry]) -> None:
        futures = [await self._publish(p.entry) for p in entries]
        await asyncio.gather(*futures)

    async def _publish_each(self, entries: list[PendingEntry]) -> list[PendingEntry]:
        """Publish one at a time; a failing entry holds back its key's later entries only."""
        published: list[PendingEntry] = []
        blocked: set[str] = set()
        for p in entries:
            key = str(p.entry.get("key"))
            if key in blocked:
                continue
            try:
                async with asyncio.timeout(self._publish_timeout_s):
                    await (await self._publish(p.entry))
            except Exception as exc:
                if not _is_permanent(exc):
                    break  # the broker went away: retry the rest later, in order
                blocked.add(key)
                await self._failed(p, exc)
                continue
            published.append(p)
        return published

    async def _failed(self, entry: PendingEntry, exc: Exception) -> None:
        count = self._failures[entry.id] = self._failures.get(entry.id, 0) + 1
        if count < PARK_AFTER:
            return
        reason = f"{type(exc).__module__}.{type(exc).__qualname__}"
        await self._store.park(entry, reason, self._service)
        self._failures.pop(entry.id, None)
        self.parked += 1
        topic = str(entry.entry.get("topic", "unknown"))
        OUTBOX_PARKED.labels(service=self._service, topic=topic).inc()
        log.error(
            "outbox entry parked after repeated permanent failures",
            extra={"event_id": entry.id, "topic": topic, "error_kind": reason},
        )

    async def _publish(self, entry: Document) -> asyncio.Future[Any]:
        token = otel_context.attach(propagate.extract(entry.get("trace") or {}))
        try:
            return await self._broker.publish(
                bytes(entry["value"]),
                entry["topic"],
                key=entry["key"].encode(),
                headers=dict(entry["headers"]),
                no_confirm=True,
            )
        finally:
            otel_context.detach(token)

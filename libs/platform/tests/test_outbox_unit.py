"""The outbox relay without servers (mongomock + a fake broker): each defect fails in seconds.

Integration tests over the real broker and database are in `test_outbox.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from switchboard_contracts import Event, decode, make_event
from switchboard_contracts.notes import NoteRated
from switchboard_contracts.samples import sample_payload
from switchboard_platform.outbox import (
    LAST,
    OUTBOX,
    PARKED,
    SINCE,
    OutboxStore,
    merge_updates,
    outbox_update,
    with_outbox,
)
from switchboard_platform.outbox_relay import (
    LEASES,
    OWNER_FILE,
    PARK_AFTER,
    OutboxRelay,
    RelayLease,
    replica_lease_owner,
)
from switchboard_platform.testing.fakes import FakeBroker, FakeDatabase
from switchboard_platform.testing.polling import eventually


def _rated(tenant: str, score: int = 3) -> Event[NoteRated]:
    payload = sample_payload(NoteRated, tenant_id=tenant, score=score)
    return make_event(payload, tenant_id=tenant, source="/test")


def _relay(db: Any, broker: FakeBroker, collections: tuple[str, ...] = ("a",), **kw: Any) -> Any:
    return OutboxRelay(db, collections, service="unit", broker=broker, **kw)  # type: ignore[arg-type]


def _ids(broker: FakeBroker) -> list[str]:
    return [decode(p.topic, p.value, p.headers).id for p in broker.published]


async def _append(db: Any, doc_id: Any, *events: Event[Any], collection: str = "a") -> None:
    await db[collection].update_one({"_id": doc_id}, outbox_update(list(events)))


async def test_two_relays_draining_one_document_then_one_more_event_lose_nothing() -> None:
    """The issue-7 defect: a second relay's clear must not hide an event appended later."""
    db, broker = FakeDatabase(), FakeBroker()
    first, later = _rated("t1", 1), _rated("t1", 2)
    await db.a.insert_one(with_outbox({"_id": "note"}, [first]))
    store_a, store_b = OutboxStore(db, ["a"]), OutboxStore(db, ["a"])  # type: ignore[arg-type]
    batch_a, batch_b = await store_a.pending(10), await store_b.pending(10)
    await store_a.clear(batch_a, batch_a.entries)
    await store_b.clear(batch_b, batch_b.entries)  # the same entries, already gone
    await _append(db, "note", later)  # e.g. note.deleted
    published, _ = await _relay(db, broker).drain_once()
    assert published == 1
    assert _ids(broker) == [later.id]
    doc = await db.a.find_one({"_id": "note"})
    assert doc[OUTBOX] == []
    assert SINCE not in doc
    assert LAST not in doc


async def test_an_event_appended_between_read_and_clear_stays_pending() -> None:
    db = FakeDatabase()
    first, later = _rated("t1"), _rated("t1")
    await db.a.insert_one(with_outbox({"_id": "x"}, [first]))
    store = OutboxStore(db, ["a"])  # type: ignore[arg-type]
    batch = await store.pending(10)
    await _append(db, "x", later)
    await store.clear(batch, batch.entries)
    doc = await db.a.find_one({"_id": "x"})
    assert [e["id"] for e in doc[OUTBOX]] == [later.id]
    assert doc[SINCE] == doc[OUTBOX][0]["seq"]


async def test_updates_merge_with_the_outbox_instead_of_replacing_its_fields() -> None:
    db = FakeDatabase()
    await db.a.insert_one(with_outbox({"_id": "x", "v": 0}, []))
    event = _rated("t1")
    await db.a.update_one({"_id": "x"}, merge_updates({"$set": {"v": 1}}, outbox_update([event])))
    doc = await db.a.find_one({"_id": "x"})
    assert doc["v"] == 1
    assert doc[LAST] == doc[SINCE] == doc[OUTBOX][0]["seq"]


async def test_order_holds_when_more_documents_wait_than_one_batch_reads() -> None:
    """An entry appended late to an early document waits for older entries of unread ones."""
    db, broker = FakeDatabase(), FakeBroker()
    tenant = "t1"
    written: list[Event[Any]] = []
    early = _rated(tenant)
    await db.a.insert_one(with_outbox({"_id": "early"}, [early]))
    written.append(early)
    for i in range(7):
        event = _rated(tenant)
        await db.b.insert_one(with_outbox({"_id": f"b{i}"}, [event]))
        written.append(event)
    late = _rated(tenant)
    await _append(db, "early", late)
    written.append(late)
    relay = _relay(db, broker, ("a", "b"), batch_size=3)
    for _ in range(10):
        await relay.drain_once()
    assert _ids(broker) == [e.id for e in written]


async def test_an_oversized_entry_is_parked_and_only_its_tenant_waits_meanwhile() -> None:
    db = FakeDatabase()
    big, after_big, other = _rated("t-big", 1), _rated("t-big", 2), _rated("t-other", 3)
    await db.a.insert_one(with_outbox({"_id": 1}, [big]))
    await db.a.insert_one(with_outbox({"_id": 2}, [after_big]))
    await db.a.insert_one(with_outbox({"_id": 3}, [other]))
    big_value = bytes((await db.a.find_one({"_id": 1}))[OUTBOX][0]["value"])
    broker = FakeBroker(fail=lambda v, t: MessageSizeTooLargeError() if v == big_value else None)
    relay = _relay(db, broker)
    await relay.drain_once()
    assert _ids(broker) == [other.id]  # the other tenant is not held up
    for _ in range(PARK_AFTER - 1):
        await relay.drain_once()
    assert relay.parked == 1
    assert await db[PARKED].count_documents({}) == 1
    parked = await db[PARKED].find_one({})
    assert parked["_id"] == big.id
    assert "MessageSizeTooLarge" in parked["reason"]
    await relay.drain_once()
    assert _ids(broker) == [other.id, after_big.id]  # its tenant goes on after the parking


async def test_a_malformed_entry_is_parked_not_retried_forever() -> None:
    db, broker = FakeDatabase(), FakeBroker()
    good = _rated("t1")
    await db.a.insert_one(
        {"_id": "bad", OUTBOX: [{"id": "junk", "seq": "0"}], SINCE: "0", LAST: "0"}
    )
    await db.a.insert_one(with_outbox({"_id": "good"}, [good]))
    relay = _relay(db, broker)
    for _ in range(PARK_AFTER + 1):
        await relay.drain_once()
    assert _ids(broker) == [good.id]
    assert relay.parked == 1
    assert await db.a.count_documents({SINCE: {"$exists": True}}) == 0


async def test_a_transient_broker_failure_keeps_every_event() -> None:
    db = FakeDatabase()
    await db.a.insert_one(with_outbox({"_id": 1}, [_rated("t1")]))
    broker = FakeBroker(fail=lambda v, t: KafkaConnectionError())
    with pytest.raises(KafkaConnectionError):
        await _relay(db, broker).drain_once()
    assert await db.a.count_documents({SINCE: {"$exists": True}}) == 1
    assert await db[PARKED].count_documents({}) == 0


async def test_one_lease_holder_at_a_time_and_a_standby_takes_over_a_lapsed_lease() -> None:
    db = FakeDatabase()
    a = RelayLease(db, ttl_s=1.0, owner="a")  # type: ignore[arg-type]
    b = RelayLease(db, ttl_s=1.0, owner="b")  # type: ignore[arg-type]
    assert await a.acquire()
    assert a.held
    assert not await b.acquire()
    assert not b.held
    await asyncio.sleep(1.05)  # a was killed: it renews no more
    assert await b.acquire()
    assert b.held
    assert not await a.acquire()
    assert not a.held
    await b.release()
    assert await a.acquire()  # a released lease is free at once


@dataclass
class _Tries:
    count: int = 0


def _count_tries(lease: RelayLease) -> _Tries:
    """Count the lease's `acquire` calls from now on."""
    tries = _Tries()
    acquire = lease.acquire

    async def counted() -> bool:
        tries.count += 1
        return await acquire()

    lease.acquire = counted  # type: ignore[method-assign]
    return tries


async def test_a_standby_woken_by_its_own_writes_does_not_try_the_lease_back_to_back() -> None:
    """A replica that does not hold the lease still hears its process's writes. It used to
    keep that wake-up set, so each of its sleeps ended at once and it tried the lease in a
    loop: three database commands a try, a third of a core per standby and two thirds of
    nx-27017's on an idle suite of two replicas each (bench/README.md)."""
    db, broker = FakeDatabase(), FakeBroker()
    holder = _relay(db, broker, lease_s=3.0)
    standby = _relay(db, broker, lease_s=3.0)
    holder.start()
    await _until(lambda: holder.lease.held)
    tries = _count_tries(standby.lease)
    standby.start()
    await _until(lambda: tries.count == 1)  # its first try, at start: the lease is taken
    for _ in range(20):  # its process writes: each write wakes its relay
        await db.a.insert_one(with_outbox({}, [_rated("t1")]))
        standby.notify("a")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert not standby.lease.held
    assert tries.count <= 2, f"the standby tried the lease {tries.count} times in half a second"
    await _until(lambda: len(broker.published) == 20)  # the holder publishes them
    await standby.stop(flush_timeout_s=1)
    await holder.stop(flush_timeout_s=1)


async def test_a_holder_that_lost_its_lease_with_a_wake_up_pending_does_not_spin() -> None:
    """A holder paused past its lease (GC, a stopped VM) finds another replica holding it
    at its next renewal, with a write's wake-up still set: as a standby it sleeps."""
    db, broker = FakeDatabase(), FakeBroker()
    relay = _relay(db, broker, lease_s=3.0, poll_interval_s=10.0)
    relay.start()
    await _until(lambda: relay.lease.held)
    await asyncio.sleep(0.05)  # its first pass is done; it sleeps a poll interval
    future = time.time() + 60  # the lease's clock is the wall clock
    taken = {"$set": {"owner": "other", "expires_at": future}}
    await db[LEASES].update_one({"_id": "relay"}, taken)
    relay.lease._valid_until = 0.0  # its lease ran out while it was paused
    tries = _count_tries(relay.lease)
    relay._wake.set()  # a write's wake-up, from when it still held the lease
    await asyncio.sleep(0.5)
    assert not relay.lease.held
    assert tries.count <= 2, f"the former holder tried the lease {tries.count} times in 0.5 s"
    await relay.stop(flush_timeout_s=1)


async def test_an_idle_holder_keeps_its_lease_however_long_its_poll_interval() -> None:
    """A holder that sleeps a poll interval longer than a third of its lease still renews
    it in time: a lapsed lease would let a standby take over (churn), and a lapsed holder
    looked like a standby to its own process's writes."""
    db, broker = FakeDatabase(), FakeBroker()
    relay = _relay(db, broker, lease_s=1.0, poll_interval_s=300.0)
    relay.start()
    await _until(lambda: relay.lease.held)
    await asyncio.sleep(1.5)  # idle: longer than the lease
    assert relay.lease.held
    await db.a.insert_one(with_outbox({"_id": 1}, [_rated("t1")]))
    relay.notify("a")
    await _until(lambda: len(broker.published) == 1, timeout_s=2)
    await relay.stop(flush_timeout_s=1)


def _written_elsewhere(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as another replica's process would have written it (its seq node differs)."""

    def moved(seq: str) -> str:
        return seq[:14] + ("0badc0de" if not seq.endswith("0badc0de") else "c0de0bad")

    entries = [{**e, "seq": moved(e["seq"])} for e in doc[OUTBOX]]
    return {**doc, OUTBOX: entries, SINCE: moved(doc[SINCE]), LAST: moved(doc[LAST])}


async def test_a_collection_other_replicas_write_into_is_read_five_times_as_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another replica's writes do not wake the holder: once it has found their events in a
    collection, it reads that collection five times per poll interval, not once."""
    from switchboard_platform.testing.fakes import FakeCollection

    reads: dict[str, int] = {}
    find = FakeCollection.find

    def counted(collection: Any, *args: Any, **kwargs: Any) -> Any:
        name = collection._collection.name
        reads[name] = reads.get(name, 0) + 1
        return find(collection, *args, **kwargs)

    monkeypatch.setattr(FakeCollection, "find", counted)
    db, broker = FakeDatabase(), FakeBroker()
    relay = _relay(db, broker, ("a", "b"), poll_interval_s=1.0)
    relay.start()
    await _until(lambda: relay.lease.held)
    await db.a.insert_one(_written_elsewhere(with_outbox({"_id": 1}, [_rated("t1", 1)])))
    await _until(lambda: len(broker.published) == 1, timeout_s=3)  # found by a poll
    written = asyncio.get_running_loop().time()
    await db.a.insert_one(_written_elsewhere(with_outbox({"_id": 2}, [_rated("t1", 2)])))
    await _until(lambda: len(broker.published) == 2, timeout_s=3)
    waited = asyncio.get_running_loop().time() - written
    assert waited < 0.6, f"another replica's event waited {waited:.2f} s (poll interval 1 s)"
    reads.clear()
    await asyncio.sleep(1.0)
    assert reads.get("a", 0) >= 3  # about five
    assert reads.get("b", 0) <= 2  # about one: nobody else writes into it
    await relay.stop(flush_timeout_s=1)


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, timeout_s=timeout_s, every_s=0.001)


async def test_replicas_with_a_crash_publish_every_event_in_per_tenant_order() -> None:
    """Two relays (one lease) and writes from two 'replicas'; one relay dies mid-way."""
    db, broker = FakeDatabase(), FakeBroker()
    relays = [_relay(db, broker, poll_interval_s=0.01, lease_s=1.0) for _ in range(2)]
    for relay in relays:
        relay.start()
    written: dict[str, list[str]] = {}
    for k in range(5):
        await db.a.insert_one(with_outbox({"_id": f"t{k}-profile"}, []))
    for i in range(200):
        tenant = f"t{i % 5}"
        event = _rated(tenant)
        if i % 3 == 0:  # an update of an older document of the tenant
            await _append(db, f"{tenant}-profile", event)
        else:
            await db.a.insert_one(with_outbox({"_id": f"{tenant}-{i}"}, [event]))
        written.setdefault(tenant, []).append(event.id)
        if i == 100:  # the lease holder is killed: no flush, no release
            holder = next(r for r in relays if r.lease.held)
            assert holder._task is not None
            holder._task.cancel()
        await asyncio.sleep(0.001)
    deadline = asyncio.get_running_loop().time() + 10
    total = sum(len(v) for v in written.values())
    while len(set(_ids(broker))) < total and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for relay in relays:
        await relay.stop(flush_timeout_s=2)
    seen: dict[str, list[str]] = {}
    for p in broker.published:
        event_id = decode(p.topic, p.value, p.headers).id
        tenant = (p.key or b"").decode()
        if event_id not in seen.setdefault(tenant, []):
            seen[tenant].append(event_id)
    assert seen == written


def test_sequence_numbers_sort_in_causal_order_across_processes() -> None:
    """A seq taken after another one was taken (in any process) sorts after it."""
    import time

    from switchboard_platform.outbox import _SeqClock, seq_time

    one, two = _SeqClock(), _SeqClock()  # two replicas
    seqs = []
    for clock in (one, two, one, two, two, one):
        seqs.append(clock.next())
        time.sleep(0.001)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    burst = [one.next() for _ in range(1000)]  # faster than the clock ticks
    assert burst == sorted(burst)
    assert len(set(burst)) == 1000
    assert seq_time(seqs[0]) is not None


async def test_an_odd_broker_error_while_it_restarts_is_waited_out_never_parked() -> None:
    """The embedded broker answers `UnknownError` while it comes back: not a reason to park."""
    from aiokafka.errors import UnknownError

    db = FakeDatabase()
    await db.a.insert_one(with_outbox({"_id": 1}, [_rated("t1")]))
    broker = FakeBroker(fail=lambda v, t: UnknownError())
    relay = _relay(db, broker)
    for _ in range(PARK_AFTER + 1):
        with pytest.raises(UnknownError):
            await relay.drain_once()
    assert relay.parked == 0
    assert await db.a.count_documents({SINCE: {"$exists": True}}) == 1


async def test_backlog_gauge_counts_documents_beyond_the_batch_at_most_once_a_second() -> None:
    """`pending` covers what the relay has not read yet; counting it is rate-limited."""
    db, broker = FakeDatabase(), FakeBroker()
    for i in range(7):
        await db.a.insert_one(with_outbox({"_id": f"doc-{i}"}, [_rated(f"t{i}")]))
    relay = _relay(db, broker, batch_size=3)
    counts = 0
    count = relay._store.pending_documents

    async def counted() -> int:
        nonlocal counts
        counts += 1
        found: int = await count()
        return found

    relay._store.pending_documents = counted
    published, more = await relay.drain_once()
    assert (published, more) == (3, True)
    assert relay.pending == 7  # 3 read, 4 not yet
    await relay.drain_once()
    assert counts == 1  # the second drain of the backlog reused the count of the first
    await relay.drain_once()
    assert len(broker.published) == 7
    assert relay.pending == 0  # the last batch: read, published, nothing beyond it


@pytest.mark.parametrize(("linger_s", "batches"), [(0.0, [1, 1]), (0.1, [2])])
async def test_a_linger_publishes_the_writes_of_those_milliseconds_as_one_batch(
    linger_s: float, batches: list[int]
) -> None:
    """`OUTBOX_LINGER_MS`: a write wakes the relay, which waits that long before it reads."""
    db, broker = FakeDatabase(), FakeBroker()
    relay = _relay(db, broker, poll_interval_s=30.0, linger_s=linger_s)
    sizes: list[int] = []
    publish_all = relay._publish_all

    async def recorded(entries: list[Any]) -> None:
        sizes.append(len(entries))
        await publish_all(entries)

    relay._publish_all = recorded
    relay.start()
    first, second = _rated("t1", 1), _rated("t1", 2)
    try:
        async with asyncio.timeout(5):
            while not relay.lease.held:  # noqa: ASYNC110 - the relay takes its lease first
                await asyncio.sleep(0.01)
            await db.a.insert_one(with_outbox({"_id": "one"}, [first]))
            relay.notify("a")
            await asyncio.sleep(0.03)  # the first is published by now, unless the relay lingers
            await db.a.insert_one(with_outbox({"_id": "two"}, [second]))
            relay.notify("a")
            while len(broker.published) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        await relay.stop(flush_timeout_s=2)
    assert _ids(broker) == [first.id, second.id]
    assert sizes == batches


def test_a_replica_keeps_its_lease_owner_in_its_state_dir(tmp_path: Any) -> None:
    one, other = tmp_path / "replica-0", tmp_path / "replica-1"
    assert replica_lease_owner(one) == replica_lease_owner(one)
    assert (one / OWNER_FILE).read_text() == replica_lease_owner(one)
    assert replica_lease_owner(one) != replica_lease_owner(other)
    assert replica_lease_owner(None) != replica_lease_owner(None)  # no dir: one per process


async def test_a_replica_restarted_after_a_crash_takes_its_relay_lease_back_at_once(
    tmp_path: Any,
) -> None:
    """Issue 7 §3: the killed holder's successor need not wait `OUTBOX_LEASE_S`."""
    db = FakeDatabase()
    replica, neighbour = tmp_path / "replica-0", tmp_path / "replica-1"
    killed = RelayLease(db, ttl_s=60.0, owner=replica_lease_owner(replica))  # type: ignore[arg-type]
    assert await killed.acquire()  # then SIGKILL: no release, the lease has 60 s to run
    standby = RelayLease(db, ttl_s=60.0, owner=replica_lease_owner(neighbour))  # type: ignore[arg-type]
    assert not await standby.acquire()
    restarted = RelayLease(db, ttl_s=60.0, owner=replica_lease_owner(replica))  # type: ignore[arg-type]
    assert await restarted.acquire()
    assert restarted.held
    assert not await standby.acquire()
    stateless = RelayLease(db, ttl_s=60.0, owner=replica_lease_owner(None))  # type: ignore[arg-type]
    assert not await stateless.acquire()  # without a state dir a restart waits it out


async def test_a_relay_stopping_without_its_database_stops_without_waiting_its_flush_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The events are stored in the database: without it there is nothing to flush, so a
    stop (a rolling update during a database outage) ends instead of waiting the deadline."""
    db = FakeDatabase()
    await db.a.insert_one(with_outbox({"_id": 1}, [_rated("t1")]))
    relay = _relay(db, FakeBroker())
    relay.start()
    await asyncio.sleep(0.05)
    db.unreachable = True  # the outage
    with caplog.at_level("WARNING", logger="switchboard_platform.outbox_relay"):
        await relay.stop(flush_timeout_s=120)
    messages = [r.getMessage() for r in caplog.records]
    assert "outbox relay stopped without its database; events stay stored" in messages
    assert not [m for m in messages if "did not flush in time" in m]


async def test_a_failing_relay_stops_without_waiting_for_its_pending_operation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stop during an outage: the relay's last pass failed, and its next operation waits
    on a server that does not answer (PyMongo holds it a connect timeout, longer under load).
    The stop does not wait for it: the events stay stored for the next relay, and the
    shutdown stays within a pod's grace period (a CI run took over 30 s here)."""
    db = FakeDatabase()
    await db.a.insert_one(with_outbox({"_id": 1}, [_rated("t1")]))
    broker = FakeBroker()
    relay = _relay(db, broker)
    db.unreachable = True  # the outage: the first pass fails
    relay.start()
    while relay.healthy:  # noqa: ASYNC110 - the relay reports its failure
        await asyncio.sleep(0.01)
    db.unreachable = False
    db.stall()  # the retry waits on a server that does not answer
    await asyncio.sleep(0.3)  # past the first backoff: the retry is under way
    with caplog.at_level("WARNING", logger="switchboard_platform.outbox_relay"):
        await relay.stop(flush_timeout_s=120)
    messages = [r.getMessage() for r in caplog.records]
    assert "outbox relay stopped while failing; pending events stay stored" in messages
    assert not [m for m in messages if "did not flush in time" in m]
    db.resume()
    stored = await db.a.find_one({"_id": 1})
    assert stored is not None
    assert stored[OUTBOX], "the unpublished event stays stored"
    assert broker.published == []


async def test_a_relay_that_fails_after_its_stop_began_stops_then(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outage comes while the stop waits to flush: the relay's read was under way and
    answered late, then its publish failed (the broker away too). The stop notices the
    failure then, not only at its start, and does not wait out its flush deadline."""
    db = FakeDatabase()
    await db.a.insert_one(with_outbox({"_id": 1}, [_rated("t1")]))
    broker = FakeBroker()
    relay = _relay(db, broker)
    db.stall()  # the first read hangs: the relay is healthy, its pass under way
    relay.start()
    await asyncio.sleep(0.05)
    assert relay.healthy
    with caplog.at_level("WARNING", logger="switchboard_platform.outbox_relay"):
        stopping = asyncio.create_task(relay.stop(flush_timeout_s=120))
        await asyncio.sleep(0.3)
        assert not stopping.done(), "a healthy relay is given its time to flush"
        broker.fail = lambda value, topic: KafkaConnectionError()
        db.resume()  # the read answers; the publish fails, and the relay retries
        await asyncio.wait_for(stopping, 60)
    messages = [r.getMessage() for r in caplog.records]
    assert "outbox relay stopped while failing; pending events stay stored" in messages
    stored = await db.a.find_one({"_id": 1})
    assert stored is not None
    assert stored[OUTBOX], "the unpublished event stays stored"


async def test_a_write_wakes_a_pass_that_reads_only_the_collection_written() -> None:
    """A woken pass reads the collections named by the write; a poll reads them all."""
    db, broker = FakeDatabase(), FakeBroker()
    relay = _relay(db, broker, ("a", "b"), poll_interval_s=30.0)
    reads: list[tuple[str, ...] | None] = []
    pending = relay._store.pending

    async def recorded(limit: int, collections: tuple[str, ...] | None = None) -> Any:
        reads.append(collections)
        return await pending(limit, collections)

    relay._store.pending = recorded
    relay.start()
    event = _rated("t1", 1)
    try:
        async with asyncio.timeout(5):
            while not reads:  # noqa: ASYNC110 - the first pass polls every collection
                await asyncio.sleep(0.01)
            await db.a.insert_one(with_outbox({"_id": "one"}, [event]))
            relay.notify("a")
            while not broker.published:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        await relay.stop(flush_timeout_s=2)
    assert _ids(broker) == [event.id]
    assert reads[0] is None  # the first pass: a poll
    assert reads[1] == ("a",)  # the wake-up: "b" was not read


async def test_under_steady_wake_ups_every_collection_is_still_read_each_poll_interval() -> None:
    """A holder woken every few milliseconds for "a" never sleeps a whole poll interval;
    an event in "b" (another replica's, or one a crash left) must not wait for quiet."""
    db, broker = FakeDatabase(), FakeBroker()
    relay = _relay(db, broker, ("a", "b"), poll_interval_s=0.2)
    other = _rated("t2", 1)
    relay.start()
    try:
        async with asyncio.timeout(5):
            while not relay.lease.held:  # noqa: ASYNC110 - the relay takes its lease first
                await asyncio.sleep(0.01)
            await db.b.insert_one(with_outbox({"_id": "elsewhere"}, [other]))  # no wake-up
            for i in range(100):  # 2.5 s of writes into "a", each waking the relay
                await db.a.insert_one(with_outbox({"_id": i}, [_rated("t1")]))
                relay.notify("a")
                await asyncio.sleep(0.025)
                if other.id in _ids(broker):
                    break
    finally:
        await relay.stop(flush_timeout_s=2)
    assert other.id in _ids(broker)
    assert i < 20  # within about a poll interval (0.2 s), not after the writes stopped


async def test_a_pass_over_every_collection_reads_them_at_once() -> None:
    """A poll of three collections is one round trip's wait, not three in a row."""
    db = FakeDatabase()
    for name in ("a", "b", "c"):
        await db[name].insert_one(with_outbox({"_id": name}, [_rated(f"t-{name}")]))
    store = OutboxStore(db, ["a", "b", "c"])  # type: ignore[arg-type]
    in_flight: list[str] = []
    most = 0
    gate = asyncio.Event()
    read = store._read_pending

    async def held(name: str, limit: int) -> Any:
        nonlocal most
        in_flight.append(name)
        most = max(most, len(in_flight))
        await gate.wait()
        in_flight.remove(name)
        return await read(name, limit)

    store._read_pending = held  # type: ignore[method-assign]
    task = asyncio.create_task(store.pending(10))
    for _ in range(10):
        await asyncio.sleep(0)
    assert most == 3  # all three reads in flight before any answered
    gate.set()
    batch = await task
    assert sorted(p.collection for p in batch.entries) == ["a", "b", "c"]

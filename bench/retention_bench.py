"""Retention sweep over many notes on the embedded server: the participant against `delete_many`.

    .venv/bin/python -m bench.retention_bench                 # 1,000,000 notes (a few minutes)
    .venv/bin/python -m bench.retention_bench --count 100000  # quicker

Seeds the same notes twice (bulk inserts, the notes service's retention index in place), 90%
of them past their 60 days (R-RET-1) and 10% recent. On one copy the retention participant
answers a `retention.due` for call data, exactly as the notes service would (selection by
category and clock, each clock checked, deletion by `_id` in chunks, counts for the receipt);
on the other a bare `delete_many` with the same filter runs. Both must leave exactly the
recent notes. Prints a markdown table of the times and rates.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel

from switchboard_contracts import make_event
from switchboard_contracts.categories import DataCategory
from switchboard_contracts.retention import CategoryScope, RetentionDue, RetentionReason
from switchboard_platform.embedded import EmbeddedMongo
from switchboard_platform.mongo import MongoDatabase, create_mongo_client
from switchboard_platform.retention_participant import (
    Inventory,
    PersonalData,
    RetentionParticipant,
)

BATCH = 10_000
TENANTS = 100
RECENT_SHARE = 0.1
INDEXES = [
    IndexModel([("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"),
    IndexModel([("tenant_id", ASCENDING), ("started_ms", ASCENDING)], name="tenant_newest"),
]


@dataclass(frozen=True)
class Timing:
    """One measured step."""

    step: str
    documents: int
    seconds: float

    @property
    def rate(self) -> float:
        """Documents per second."""
        return self.documents / self.seconds if self.seconds else 0.0


def _notes(start: int, count: int, total: int, now: datetime) -> list[dict[str, Any]]:
    recent_every = round(1 / RECENT_SHARE)
    docs = []
    for n in range(start, start + count):
        days = 1 if n % recent_every == 0 else 61 + n % 30
        started = now - timedelta(days=days, seconds=n % 86_400)
        docs.append(
            {
                "_id": f"note-{n:08d}",
                "call_id": f"call-{n:08d}",
                "tenant_id": f"tenant-{n % TENANTS:03d}",
                "agent_id": "agent-7",
                "caller": {
                    "name": f"Caller {n}",
                    "phone": f"+49151{n % 10**8:08d}",
                    "email": None,
                    "company": None,
                },
                "concern": "Bittet um Rückruf wegen des Termins am Freitag",
                "contact_person": "Dr. Meyer",
                "started_at": started,
                "started_ms": int(started.timestamp() * 1000),
                "created_at": now,
                "category": str(DataCategory.CALL_DATA),
                "retention_from": started,
                "_outbox": [],
            }
        )
    return docs


async def _seed(db: MongoDatabase, total: int, now: datetime) -> Timing:
    await db.notes.create_indexes(INDEXES)
    started = time.perf_counter()
    for start in range(0, total, BATCH):
        await db.notes.insert_many(
            _notes(start, min(BATCH, total - start), total, now), ordered=False
        )
    return Timing(f"seed {db.name}", total, time.perf_counter() - started)


def _order(cutoff: datetime) -> Any:
    order = RetentionDue(
        request_id=f"bench-{uuid.uuid4().hex[:8]}",
        scope=CategoryScope(kind="category", category=DataCategory.CALL_DATA, cutoff=cutoff),
        reason=RetentionReason.RETENTION_POLICY,
        issued_at=datetime.now(UTC),
    )
    return make_event(order, tenant_id="*", source="/switchboard/retention")


async def _sweep(db: MongoDatabase, cutoff: datetime, chunk: int) -> tuple[Timing, int]:
    notes = PersonalData(collection="notes", purpose="Call notes for the client")
    participant = RetentionParticipant(
        Inventory(service="notes", collections=(notes,), chunk=chunk)
    )
    participant.use(db)
    started = time.perf_counter()
    await participant.on_retention_due(_order(cutoff))
    seconds = time.perf_counter() - started
    answer = await db.retention_answers.find_one({})
    erased = sum(int(n) for n in ((answer or {}).get("erased") or {}).values())
    return Timing(f"sweep (participant, chunk {chunk})", erased, seconds), erased


async def _bare(db: MongoDatabase, cutoff: datetime) -> Timing:
    started = time.perf_counter()
    result = await db.notes.delete_many(
        {"$and": [{"category": "call_data"}, {"retention_from": {"$lt": cutoff}}]}
    )
    return Timing("bare delete_many", result.deleted_count, time.perf_counter() - started)


async def run(url: str, count: int, chunk: int) -> list[Timing]:
    """Seed two copies, sweep one, delete_many the other; check both left the recent notes."""
    client = create_mongo_client(url, app_name="retention-bench")
    suffix = uuid.uuid4().hex[:6]
    swept, bare = client[f"bench_sweep_{suffix}"], client[f"bench_bare_{suffix}"]
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=60)
    try:
        timings = [await _seed(swept, count, now), await _seed(bare, count, now)]
        sweep, erased = await _sweep(swept, cutoff, chunk)
        timings += [sweep, await _bare(bare, cutoff)]
        recent = sum(1 for n in range(count) if n % round(1 / RECENT_SHARE) == 0)
        left = [await db.notes.count_documents({}) for db in (swept, bare)]
        if left != [recent, recent] or erased != count - recent:
            raise SystemExit(f"wrong result: left {left}, erased {erased}, expected {recent} left")
        return timings
    finally:
        for db in (swept, bare):
            await client.drop_database(db.name)
        await client.close()


def table(timings: Sequence[Timing], count: int) -> str:
    """The results as a markdown table."""
    lines = [
        f"Retention sweep over {count:,} notes (90% due) on nx-27017",
        "",
        "| step | documents | seconds | documents/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {t.step} | {t.documents:,} | {t.seconds:.1f} | {t.rate:,.0f} |" for t in timings]
    sweep, bare = timings[-2], timings[-1]
    if bare.seconds:
        lines += [
            "",
            f"The sweep takes {sweep.seconds / bare.seconds:.2f} times as long as the bare "
            "delete_many.",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: `--count` notes, `--chunk` ids per deletion, `--mongodb-url` to reuse one."""
    parser = argparse.ArgumentParser(prog="python -m bench.retention_bench")
    parser.add_argument("--count", type=int, default=1_000_000, help="notes to seed per copy")
    parser.add_argument("--chunk", type=int, default=2000, help="ids per deletion round trip")
    parser.add_argument("--mongodb-url", help="an existing server instead of nx-27017")
    args = parser.parse_args(argv)
    if args.mongodb_url:
        timings = asyncio.run(run(args.mongodb_url, args.count, args.chunk))
    else:
        with EmbeddedMongo() as mongo:
            timings = asyncio.run(run(mongo.url, args.count, args.chunk))
    print(table(timings, args.count))


if __name__ == "__main__":
    main()

"""Benchmark of notify: `note.created` → mail accepted by SMTP, against the bare SMTP send rate.

    .venv/bin/python -m bench.notify_bench            # about a minute; prints a markdown table

Starts its own embedded Kafka and MongoDB, an SMTP sink (aiosmtpd, in a thread of this
process) and notify as a real process (`ServiceProcess`). Then, in one run:

- **baseline**: the bare send rate, aiosmtplib over as many kept-open connections as notify
  uses (`NOTIFY_SMTP_CONNECTIONS`), to the same sink: the ceiling of any SMTP sender here;
- **flat out**: `--notes` `note.created` put on the topic at once, for `--tenants` tenants of
  one e-mail recipient each; throughput = notes / (last mail accepted - first note produced);
- **paced**: `--rate` notes per second for `--seconds`; per note the time from producing its
  `note.created` to the sink accepting its mail (the 250), p50/p99/max.

Times are `time.monotonic()` in this process (producer and sink), so they share one clock.
CPU per note is read from /proc for notify, nx-27017 and Tansu (all share the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller

from switchboard_contracts import Event, encode, make_event
from switchboard_contracts.common import Caller
from switchboard_contracts.notes import NoteCreated
from switchboard_contracts.tenants import (
    Channel,
    ContractStatus,
    Industry,
    Recipient,
    TenantChanged,
)
from switchboard_contracts.topics import ALL_TOPICS
from switchboard_notify.domain import delivery_id
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo, free_port
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.tokens import auth_header

from .procs import cpu_seconds
from .stats import percentiles_ms

DOMAIN = "bench.example"


@dataclass
class Sink:
    """Keeps when each Message-ID was accepted (the 250 of DATA)."""

    accepted: dict[str, float] = field(default_factory=dict)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Record the message's id and time."""
        at = time.monotonic()
        content = bytes(envelope.original_content or envelope.content)
        head = content.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                with self.lock:
                    self.accepted.setdefault(line.split(b":", 1)[1].strip().decode(), at)
                    self.count += 1
                break
        return "250 OK"


@contextmanager
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    """The sink on a free port, in a thread."""
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def baseline(port: int, messages: int, connections: int) -> float:
    """Messages per second of bare aiosmtplib sends over kept-open connections."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(i)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        while not queue.empty():
            i = queue.get_nowait()
            message = EmailMessage()
            message["From"], message["To"] = f"bench@{DOMAIN}", f"r@{DOMAIN}"
            message["Subject"], message["Message-ID"] = "baseline", f"<base-{i}@{DOMAIN}>"
            message.set_content("Anruf von Erika Mustermann, bitte Rückruf.")
            await client.send_message(message)
        await client.quit()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return messages / (time.monotonic() - started)


def _tenant_event(tenant: str) -> Event[TenantChanged]:
    payload = TenantChanged(
        tenant_id=tenant,
        change="created",
        name=f"Bench {tenant}",
        industry=Industry.OTHER,
        secrecy_bound=False,
        contract_status=ContractStatus.ACTIVE,
        recipients=(Recipient(channel=Channel.EMAIL, address=f"{tenant}@{DOMAIN}"),),
    )
    return make_event(payload, tenant_id=tenant, source="/bench")


def _note_event(tenant: str, note_id: str) -> Event[NoteCreated]:
    now = time.time()
    started = time.gmtime(now)
    from datetime import UTC, datetime

    at = datetime(*started[:6], tzinfo=UTC)
    payload = NoteCreated(
        note_id=note_id,
        call_id=note_id,
        tenant_id=tenant,
        agent_id="agent-bench",
        caller=Caller(name="Erika Mustermann", phone="+4915211014450", company="ACME"),
        concern="Bittet um Rückruf wegen der Steuererklärung.",
        contact_person="Frau Meyer",
        started_at=at,
        duration_seconds=60,
        created_at=at,
    )
    return make_event(payload, tenant_id=tenant, source="/bench", subject=note_id)


def _message_id(tenant: str, note_id: str) -> str:
    return f"<{delivery_id(note_id, Channel.EMAIL, f'{tenant}@{DOMAIN}')}@{DOMAIN}>"


async def _produce(producer: AIOKafkaProducer, event: Event[Any]) -> None:
    record = encode(event)
    headers = [(k, v.encode()) for k, v in record.headers.items()]
    await producer.send_and_wait(record.topic, record.value, key=record.key, headers=headers)


async def _wait_for(sink: Sink, ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(i in sink.accepted for i in ids):
        if time.monotonic() > deadline:
            missing = sum(1 for i in ids if i not in sink.accepted)
            raise TimeoutError(f"{missing} of {len(ids)} mails missing after {timeout_s}s")
        await asyncio.sleep(0.02)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}


def _per_note(before: dict[str, float], after: dict[str, float], notes: int) -> dict[str, float]:
    return {name: (after[name] - before[name]) / notes * 1000 for name in before}


async def drive(
    args: argparse.Namespace, sink: Sink, bootstrap: str, pids: dict[str, int]
) -> dict[str, Any]:
    """Onboard the tenants, then the flat-out and the paced run."""
    tenants = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(args.tenants)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        for tenant in tenants:
            await _produce(producer, _tenant_event(tenant))
        warm = [(t, f"warm-{t}") for t in tenants]
        for tenant, note in warm:
            await _produce(producer, _note_event(tenant, note))
        await _wait_for(sink, [_message_id(t, n) for t, n in warm], 60)

        flat = [
            (tenants[i % len(tenants)], f"flat-{i}-{uuid.uuid4().hex[:6]}")
            for i in range(args.notes)
        ]
        events = [encode(_note_event(t, n)) for t, n in flat]
        cpu_before = _cpu(pids)
        started = time.monotonic()
        sends = [
            await producer.send(
                r.topic, r.value, key=r.key, headers=[(k, v.encode()) for k, v in r.headers.items()]
            )
            for r in events
        ]
        await asyncio.gather(*sends)
        ids = [_message_id(t, n) for t, n in flat]
        await _wait_for(sink, ids, 120)
        flat_s = max(sink.accepted[i] for i in ids) - started
        flat_cpu = _per_note(cpu_before, _cpu(pids), args.notes)

        paced: list[tuple[str, float]] = []
        interval = 1.0 / args.rate
        begin = time.monotonic()
        cpu_before = _cpu(pids)
        for i in range(int(args.rate * args.seconds)):
            await asyncio.sleep(max(0.0, begin + i * interval - time.monotonic()))
            tenant = tenants[i % len(tenants)]
            note = f"paced-{i}-{uuid.uuid4().hex[:6]}"
            produced = time.monotonic()
            await _produce(producer, _note_event(tenant, note))
            paced.append((_message_id(tenant, note), produced))
        offered = len(paced) / (time.monotonic() - begin)
        await _wait_for(sink, [i for i, _ in paced], 60)
        paced_cpu = _per_note(cpu_before, _cpu(pids), len(paced))
        latencies = [sink.accepted[i] - produced for i, produced in paced]
    finally:
        await producer.stop()
    return {
        "flat_notes": args.notes,
        "flat_per_s": args.notes / flat_s,
        "flat_cpu_ms": flat_cpu,
        "paced_offered": offered,
        "paced": percentiles_ms(latencies),
        "paced_cpu_ms": paced_cpu,
    }


def _cpu_text(per_note: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.1f}" for name, ms in per_note.items())


def table(base: float, result: dict[str, Any], args: argparse.Namespace) -> str:
    """The figures as a markdown table."""
    paced = result["paced"]
    rows = [
        "| measure | value |",
        "| --- | --- |",
        f"| baseline: bare aiosmtplib to the sink, {args.connections} connections | "
        f"{base:.0f} mails/s |",
        f"| notify flat out, {result['flat_notes']} notes, note.created → 250 | "
        f"{result['flat_per_s']:.0f} notes/s ({result['flat_per_s'] / base:.0%} of baseline), "
        f"CPU ms/note: {_cpu_text(result['flat_cpu_ms'])} |",
        f"| notify at {result['paced_offered']:.0f} notes/s, note.created → 250 | "
        f"p50 {paced['p50']} ms, p99 {paced['p99']} ms, max {paced['max']} ms "
        f"(n={paced['n']}); CPU ms/note: {_cpu_text(result['paced_cpu_ms'])} |",
    ]
    return "\n".join(rows)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notes", type=int, default=600, help="notes in the flat-out run")
    parser.add_argument("--rate", type=float, default=100.0, help="notes/s in the paced run")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the paced run")
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4, help="NOTIFY_SMTP_CONNECTIONS")
    parser.add_argument("--concurrency", type=int, default=8, help="NOTIFY_SENDER_CONCURRENCY")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="notify-bench-") as folder,
        EmbeddedKafka(topics=ALL_TOPICS) as kafka,
        EmbeddedMongo() as mongo,
        smtp_sink() as (sink, port),
    ):
        base = asyncio.run(baseline(port, 2000, args.connections))
        sink.accepted.clear()
        notify = ServiceProcess(
            "notify",
            "switchboard_notify",
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            mongodb_url=mongo.url,
            log_dir=Path(folder),
            database="notify",
            extra_env={
                "NOTIFY_SMTP_HOST": "127.0.0.1",
                "NOTIFY_SMTP_PORT": str(port),
                "NOTIFY_SMTP_TLS": "none",
                "NOTIFY_SMTP_CONNECTIONS": str(args.connections),
                "NOTIFY_SENDER_CONCURRENCY": str(args.concurrency),
                "NOTIFY_MAIL_FROM": f"notify@{DOMAIN}",
                "OUTBOX_POLL_INTERVAL_S": "1.0",  # it wakes on notify's writes; polls cost queries
            },
        )
        with notify:
            httpx.get(f"{notify.url}/readyz", headers=auth_header("operator"), timeout=5)
            pids = {"notify": notify.pid, "nx-27017": mongo.pid, "tansu": kafka.pid}
            running = {name: pid for name, pid in pids.items() if pid is not None}
            result = asyncio.run(drive(args, sink, kafka.bootstrap_servers, running))
    print(table(base, result, args))


if __name__ == "__main__":
    main()

"""Experiment launcher: start a service with named monkeypatches applied (never shipped).

`python -m bench.variants` with BENCH_SERVICE_MODULE (e.g. switchboard_notes) and
BENCH_PATCHES (comma-separated names below) in the environment. The harness does this for
`bench.run --patches ...`. Each patch is a quick scratch version of a platform change, to
measure its effect before anyone changes the platform itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import runpy
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.variants")
_TIMINGS: defaultdict[str, list[float]] = defaultdict(list)
AsyncFn = Callable[..., Awaitable[Any]]


def _replace(owner: Any, name: str, value: Any) -> None:
    """Monkeypatch `owner.name` (a module or class attribute) with `value`."""
    setattr(owner, name, value)


def _timed(owner: Any, name: str, label: str, *, size: Callable[[Any], int] | None = None) -> None:
    """Replace `owner.name` (a coroutine function) by one that records its durations."""
    original: AsyncFn = getattr(owner, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = await original(*args, **kwargs)
        _TIMINGS[label].append(time.perf_counter() - started)
        if size is not None:
            _TIMINGS[f"{label}.size"].append(size(result))
        return result

    _replace(owner, name, wrapper)


def _dump_timings() -> None:
    out = os.environ.get("BENCH_TIMINGS_DIR")
    if not out:
        return
    summary = {}
    for label, values in _TIMINGS.items():
        ordered = sorted(values)
        scale = 1 if label.endswith(".size") else 1000
        summary[label] = {
            "n": len(ordered),
            "mean": round(sum(ordered) / len(ordered) * scale, 3),
            "p50": round(ordered[len(ordered) // 2] * scale, 3),
            "p99": round(ordered[int(len(ordered) * 0.99)] * scale, 3),
            "total_s": round(sum(ordered), 3) if scale == 1000 else None,
        }
    name = os.environ.get("BENCH_SERVICE_MODULE", "service")
    Path(out, f"{name}.timings.json").write_text(json.dumps(summary, indent=2))


def timing() -> None:
    """Time the hot path's stages: handler, commit, outbox relay parts, repository writes."""
    from aiokafka import AIOKafkaConsumer

    from switchboard_platform import consumer, outbox

    _timed(consumer.EventPipeline, "process", "consumer.process")
    _timed(AIOKafkaConsumer, "commit", "kafka.commit")
    _timed(outbox.OutboxRelay, "drain_once", "relay.drain_once", size=lambda n: int(n))
    _timed(outbox.OutboxRelay, "_pending", "relay.find_pending", size=len)
    _timed(outbox.OutboxRelay, "_clear", "relay.clear")
    try:
        from switchboard_notes.repository import NotesRepository

        _timed(NotesRepository, "insert_new", "notes.insert_new")
    except ImportError:
        pass
    try:
        from switchboard_intake.repository import IntakeRepository

        _timed(IntakeRepository, "insert_call", "intake.insert_call")
        _timed(IntakeRepository, "tenant_owning", "intake.tenant_owning")
    except ImportError:
        pass

    # uvicorn re-raises SIGTERM after its graceful shutdown, with the handler it found
    # installed: this one, so the figures are written before the process ends.
    def on_sigterm(signum: int, frame: Any) -> None:
        _dump_timings()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)


def inline_sync_deps() -> None:
    """Run FastAPI's sync dependencies (auth, service lookup) on the loop, not in threads."""
    import fastapi.dependencies.utils as deps

    async def call_inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    _replace(deps, "run_in_threadpool", call_inline)


def no_access_log() -> None:
    """Drop uvicorn's per-request access log line."""
    from switchboard_platform import logs

    configure = logs.configure_logging

    def configure_quietly(service: str, level: str = "INFO") -> None:
        configure(service, level)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

    _replace(logs, "configure_logging", configure_quietly)


def no_telemetry() -> None:
    """No OpenTelemetry spans at all: no FastAPI, pymongo or FastStream instrumentation."""
    from faststream import BaseMiddleware

    from switchboard_platform import logs, runtime, telemetry

    def instrument_app(app: Any, tracer_provider: Any = None) -> None:
        app.add_middleware(logs.LogScopeMiddleware)

    _replace(runtime, "instrument_app", instrument_app)
    _replace(runtime, "kafka_telemetry_middleware", lambda tracer_provider=None: BaseMiddleware)
    _replace(telemetry, "_install_process_wide", lambda provider, service: None)


def coalesced_commit() -> None:
    """Commit each partition's handled offset at most every 50 ms instead of per message.

    Still at-least-once: only offsets of handled messages are committed (explicitly, not the
    consumer's position), so a crash redelivers at most the last 50 ms, which idempotent
    handlers absorb. A real version must also flush on partition revocation and shutdown.
    """
    from aiokafka import TopicPartition
    from faststream.kafka.message import KafkaAckableMessage
    from faststream.message import StreamMessage

    pending: dict[Any, dict[TopicPartition, int]] = {}
    interval_s = float(os.environ.get("BENCH_COMMIT_INTERVAL_S", "0.05"))

    async def flush(consumer: Any) -> None:
        await asyncio.sleep(interval_s)
        offsets = pending.pop(consumer, {})
        if offsets:
            try:
                await consumer.commit(offsets)
            except Exception:  # a rebalance: the messages come again, idempotently
                log.warning("coalesced commit failed", exc_info=True)

    async def ack(self: KafkaAckableMessage) -> None:
        if not self.committed:
            record = self.raw_message
            assert not isinstance(record, tuple)
            offsets = pending.get(self.consumer)
            if offsets is None:
                offsets = pending[self.consumer] = {}
                asyncio.get_running_loop().create_task(flush(self.consumer))
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        await StreamMessage.ack(self)

    _replace(KafkaAckableMessage, "ack", ack)


def partition_workers() -> None:
    """One consumer per partition (FastStream max_workers=4), handled concurrently.

    Order per partition (so per tenant) is kept. Static membership is off: the workers
    would share one group instance id.
    """
    from faststream.kafka import KafkaBroker

    original = KafkaBroker.subscriber

    def subscriber(self: KafkaBroker, *topics: Any, **kwargs: Any) -> Any:
        kwargs["max_workers"] = int(os.environ.get("BENCH_PARTITION_WORKERS", "4"))
        kwargs["group_instance_id"] = None
        return original(self, *topics, **kwargs)

    _replace(KafkaBroker, "subscriber", subscriber)


def relay_single_clear() -> None:
    """Clear a published document's outbox with one `$unset` instead of `$pull` + `$unset`.

    Valid when the relay published every entry it read of that document and nothing was
    appended since (the filter on the pending count checks the latter); otherwise the
    original two-step clear runs for that document.
    """
    from pymongo import UpdateOne

    from switchboard_platform import outbox

    original = outbox.OutboxRelay._clear

    async def clear(self: outbox.OutboxRelay, published: list[Any]) -> None:
        by_doc: dict[tuple[str, Any], int] = defaultdict(int)
        for p in published:
            by_doc[(p.collection, p.doc_id)] += 1
        writes: dict[str, list[UpdateOne]] = defaultdict(list)
        unset = {"$unset": {outbox.OUTBOX: "", outbox.PENDING: "", outbox.SINCE: ""}}
        for (collection, doc_id), count in by_doc.items():
            writes[collection].append(UpdateOne({"_id": doc_id, outbox.PENDING: count}, unset))
        for collection, ops in writes.items():
            result = await self._db[collection].bulk_write(ops, ordered=False)
            if result.modified_count != len(ops):
                await original(self, [p for p in published if p.collection == collection])

    _replace(outbox.OutboxRelay, "_clear", clear)


def sampler_off() -> None:
    """Keep the instrumentation but record no spans (ids still propagate, logs keep them)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from switchboard_platform import telemetry

    def provider(**kwargs: Any) -> TracerProvider:
        return TracerProvider(sampler=ALWAYS_OFF, **kwargs)

    _replace(telemetry, "TracerProvider", provider)


def pymongo_async() -> None:
    """PyMongo's native asyncio client instead of motor (no thread-pool hop per operation)."""
    from pymongo import AsyncMongoClient

    from switchboard_platform import mongo, runtime

    def create(url: str, *, app_name: str) -> Any:
        return AsyncMongoClient(
            url,
            tz_aware=True,
            appname=app_name,
            serverSelectionTimeoutMS=3000,
            connectTimeoutMS=3000,
            retryWrites=True,
        )

    _replace(mongo, "create_mongo_client", create)
    _replace(runtime, "create_mongo_client", create)


def tenant_cache() -> None:
    """Intake remembers which tenant owns a number for 5 s instead of asking per call."""
    from switchboard_intake.repository import IntakeRepository

    original = IntakeRepository.tenant_owning
    cache: dict[str, tuple[float, Any]] = {}

    async def tenant_owning(self: IntakeRepository, number: str) -> Any:
        hit = cache.get(number)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        tenant = await original(self, number)
        cache[number] = (time.monotonic() + 5.0, tenant)
        return tenant

    _replace(IntakeRepository, "tenant_owning", tenant_owning)


def relay_wake_fix() -> None:
    """The relay clears its wake-up flag before it reads, not after it published.

    Today `_run` clears the flag after `drain_once`: a use case that writes (and notifies)
    while a drain is under way, after its read, loses its wake-up, and its event waits for
    the next write or the poll interval (OUTBOX_POLL_INTERVAL_S: 0.2 s in tests, 1 s default).
    """
    from switchboard_platform import outbox

    async def run(self: outbox.OutboxRelay) -> None:
        backoff = 0.1
        while True:
            self._wake.clear()  # from here on, a notify() wakes the next round
            try:
                published = await self.drain_once()
                self.healthy = True
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                self.healthy = False
                log.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping and published == 0:
                return
            if published >= self._batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    _replace(outbox.OutboxRelay, "_run", run)


def relay_linger() -> None:
    """The relay waits 5 ms after a wake-up, so one round trip carries more events."""
    from switchboard_platform import outbox

    original = outbox.OutboxRelay.drain_once

    async def drain_once(self: outbox.OutboxRelay) -> int:
        await asyncio.sleep(0.005)
        return await original(self)

    _replace(outbox.OutboxRelay, "drain_once", drain_once)


def pure_asgi_http() -> None:
    """The request-size limit and request metrics as plain ASGI, not BaseHTTPMiddleware.

    BaseHTTPMiddleware runs the rest of the app in a new task behind memory streams, per
    layer and request. (Scratch version: a body without Content-Length is counted while it
    is read and refused by an exception, not a 413.)
    """
    from starlette.responses import JSONResponse
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from switchboard_platform import http
    from switchboard_platform.metrics import HTTP_DURATION, HTTP_REQUESTS

    class RequestLimits:
        def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
            self.app, self.max_bytes = app, max_bytes

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
                response = JSONResponse({"detail": "request body too large"}, status_code=413)
                await response(scope, receive, send)
                return
            seen = 0

            async def counted() -> Message:
                nonlocal seen
                message = await receive()
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ValueError("request body too large")
                return message

            await self.app(scope, counted, send)

    class RequestMetrics:
        def __init__(self, app: ASGIApp, *, service: str) -> None:
            self.app, self.service = app, service

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return
            started = time.perf_counter()
            status = "500"

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = str(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                template = getattr(scope.get("route"), "path", "unmatched")
                labels = {"service": self.service, "method": scope["method"], "route": template}
                HTTP_DURATION.labels(**labels).observe(time.perf_counter() - started)
                HTTP_REQUESTS.labels(**labels, status=status).inc()

    _replace(http, "RequestLimits", RequestLimits)
    _replace(http, "RequestMetrics", RequestMetrics)


PATCHES: dict[str, Callable[[], None]] = {
    "pure_asgi_http": pure_asgi_http,
    "sampler_off": sampler_off,
    "pymongo_async": pymongo_async,
    "tenant_cache": tenant_cache,
    "relay_linger": relay_linger,
    "relay_wake_fix": relay_wake_fix,
    "timing": timing,
    "inline_sync_deps": inline_sync_deps,
    "no_access_log": no_access_log,
    "no_telemetry": no_telemetry,
    "coalesced_commit": coalesced_commit,
    "partition_workers": partition_workers,
    "relay_single_clear": relay_single_clear,
}


def main() -> None:
    """Apply the patches named in BENCH_PATCHES, then run the service's own `__main__`."""
    for name in filter(None, os.environ.get("BENCH_PATCHES", "").split(",")):
        PATCHES[name]()
    runpy.run_module(os.environ["BENCH_SERVICE_MODULE"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

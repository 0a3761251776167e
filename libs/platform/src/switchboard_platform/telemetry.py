"""OpenTelemetry: traces for every service in the process; metrics and logs too over OTLP.

HTTP requests (FastAPI instrumentation), Kafka publish and consume (FastStream's telemetry
middleware, trace context in message headers) and MongoDB commands (pymongo instrumentation,
statements never captured) produce spans. Each service gets its own tracer provider, so its
spans name it; all providers feed ONE export pipeline that first strips what could hold
personal data (query strings, client addresses, statements, exception messages), then hands
the span to the OTLP exporter (when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and to whatever
processors a test added with `add_span_processor`.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status

from .logs import LogScopeMiddleware, TraceContextFilter, safe_traceback

_PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_DROPPED_ATTRIBUTES = frozenset(
    {
        "db.statement",  # query values
        "db.query.text",
        "url.query",  # search terms and filters
        "client.address",  # who sent the request
        "net.peer.ip",
        "net.sock.peer.addr",
        "http.client_ip",
    }
)
_URL_ATTRIBUTES = frozenset({"http.url", "url.full", "http.target"})
_EXCEPTION_ATTRIBUTES = frozenset({"exception.type", "exception.escaped"})


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in _DROPPED_ATTRIBUTES:
            continue
        if key in _URL_ATTRIBUTES and isinstance(value, str):
            value = value.split("?", 1)[0]
        cleaned[key] = value
    return cleaned


def _clean_event(event: Event) -> Event:
    attributes = event.attributes or {}
    if event.name == "exception":  # the type stays; message and stack go (logs keep frames)
        kept = {k: v for k, v in attributes.items() if k in _EXCEPTION_ATTRIBUTES}
        return Event(event.name, kept, event.timestamp)
    return Event(event.name, _clean(attributes), event.timestamp)


def private_copy(span: ReadableSpan) -> ReadableSpan:
    """`span` without attributes, exception details or status text that may hold personal data."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_clean(span.attributes),
        events=[_clean_event(e) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class _ExportPipeline(SpanProcessor):
    """The one processor of every provider: makes each ended span private, then fans it out."""

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()

    def add(self, processor: SpanProcessor) -> None:
        self._processors = (*self._processors, processor)

    def remove(self, processor: SpanProcessor) -> None:
        self._processors = tuple(p for p in self._processors if p is not processor)

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self._processors:
            private = private_copy(span)
            for processor in self._processors:
                processor.on_end(private)

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self._processors)


_PIPELINE = _ExportPipeline()
_providers: dict[str, TracerProvider] = {}


def add_span_processor(processor: SpanProcessor) -> None:
    """Send every service's finished (already private) spans to `processor` too, e.g. a test's."""
    _PIPELINE.add(processor)


def remove_span_processor(processor: SpanProcessor) -> None:
    """Stop sending spans to a processor added with `add_span_processor`."""
    _PIPELINE.remove(processor)


def tracing_enabled(setting: str) -> bool:
    """Whether spans are recorded: `on`, `off`, or `auto` (when an OTLP endpoint is set).

    Instrumentation costs CPU even when nothing exports its spans (bench/README.md), so a
    service without an exporter records none; tests that collect spans turn it `on`.
    """
    if setting == "auto":
        return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    return setting == "on"


def setup_telemetry(service: str, version: str) -> TracerProvider:
    """The service's tracer provider, made once; the first one made also serves the process.

    The process-wide parts (global tracer provider, MongoDB instrumentation, OTLP exporters)
    are installed once, by the first service; in production a process runs one service.
    """
    provider = _providers.get(service)
    if provider is None:
        resource = Resource.create(
            {"service.name": f"switchboard-{service}", "service.version": version}
        )
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(_PIPELINE)
        _providers[service] = provider
        if len(_providers) == 1:
            _install_process_wide(provider, service)
    return provider


def instrument_mongo(tracer_provider: TracerProvider) -> None:
    """Trace MongoDB commands (statements never captured); once per process."""
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    instrumentor = PymongoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider, capture_statement=False)


def _install_process_wide(provider: TracerProvider, service: str) -> None:
    trace.set_tracer_provider(provider)
    atexit.register(_PIPELINE.shutdown)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        _export_over_otlp(provider.resource, service)


def _export_over_otlp(resource: Resource, service: str) -> None:
    """Traces, metrics (FastStream's and FastAPI's) and log records to the OTLP endpoint."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    _PIPELINE.add(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(logger_provider)
    handler = _otlp_log_handler(logger_provider)
    handler.addFilter(TraceContextFilter(service))
    logging.getLogger().addHandler(handler)


def _otlp_log_handler(logger_provider: Any) -> logging.Handler:
    from opentelemetry.sdk._logs import LoggingHandler

    class PrivateLoggingHandler(LoggingHandler):
        """Exports log records with the same care as the JSON lines: no exception messages."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("opentelemetry"):  # an exporter's own complaints
                return
            safe = copy.copy(record)
            fields = safe.__dict__
            for name in ("trace_id", "span_id", "service"):  # carried natively by OTLP
                fields.pop(name, None)
            if fields.get("tenant") is None:
                fields.pop("tenant", None)
            if safe.exc_info is not None and safe.exc_info[0] is not None:
                fields["error"] = safe_traceback(safe.exc_info)
                safe.exc_info, safe.exc_text = None, None
            super().emit(safe)

    with warnings.catch_warnings():  # the SDK handler is deprecated in favour of a new package
        warnings.simplefilter("ignore", DeprecationWarning)
        return PrivateLoggingHandler(logger_provider=logger_provider)


def http_telemetry(tracer_provider: TracerProvider, *, tracing: bool) -> Any:
    """FastAPI's own OpenTelemetry settings: a SERVER span per request, nothing else.

    FastAPI (≥ 0.160) traces, meters and logs requests by itself, on by default. Its logs
    carry exception messages and its validation errors the input (personal data), and
    its metrics duplicate Prometheus': both stay off, as do per-dependency spans; request
    spans follow `SWITCHBOARD_TRACING` and leave out health, readiness and metrics probes.
    """
    return {
        "tracing": tracing,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
        "tracer_provider": tracer_provider,
        "exclude": lambda scope: scope.get("path") in _PROBE_PATHS,
    }


def instrument_app(app: FastAPI) -> None:
    """Give each HTTP request its own log scope."""
    app.add_middleware(LogScopeMiddleware)

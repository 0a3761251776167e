"""OpenTelemetry: one tracer provider per process, exported over OTLP when configured.

HTTP requests (FastAPI instrumentation), Kafka publish and consume (FastStream's telemetry
middleware, trace context in message headers) and MongoDB commands (pymongo instrumentation)
all produce spans; span attributes never carry message bodies or query values.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_EXCLUDED_URLS = "healthz,readyz,metrics"


def setup_telemetry(service: str, version: str) -> None:
    """Install the process's tracer provider once; add an OTLP exporter if an endpoint is set."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    resource = Resource.create(
        {"service.name": f"switchboard-{service}", "service.version": version}
    )
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    PymongoInstrumentor().instrument(capture_statement=False)


def kafka_telemetry_middleware() -> KafkaTelemetryMiddleware:
    """FastStream middleware that traces publish and consume and carries `traceparent`."""
    return KafkaTelemetryMiddleware(tracer_provider=trace.get_tracer_provider())


def instrument_app(app: FastAPI) -> None:
    """Trace every HTTP request except health and metrics probes."""
    FastAPIInstrumentor.instrument_app(app, excluded_urls=_EXCLUDED_URLS)

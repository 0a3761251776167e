"""Tracing: per-service providers, one private export pipeline, test exporters, OTLP export."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from switchboard_platform.telemetry import (
    add_span_processor,
    http_telemetry,
    instrument_app,
    remove_span_processor,
    setup_telemetry,
)

PERSONAL = ("Erika", "Mustermann", "4915211014450", "Heizung")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span finished during the test, as the exporters receive it."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    add_span_processor(processor)
    yield exporter
    remove_span_processor(processor)


def _everything_said(span: ReadableSpan) -> str:
    """Name, attribute values, event attributes and status text of a span, as one string."""
    parts = [span.name, str(span.status.description or "")]
    parts += [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        parts += [event.name, *(str(v) for v in (event.attributes or {}).values())]
    return " ".join(parts)


def test_each_service_gets_its_own_provider_once() -> None:
    first = setup_telemetry("telemetry-a", "1.0")
    assert setup_telemetry("telemetry-a", "2.0") is first
    second = setup_telemetry("telemetry-b", "1.0")
    assert second is not first
    assert first.resource.attributes["service.name"] == "switchboard-telemetry-a"
    assert second.resource.attributes["service.name"] == "switchboard-telemetry-b"


def test_spans_of_all_services_reach_an_added_processor_until_it_is_removed(
    spans: InMemorySpanExporter,
) -> None:
    for service in ("telemetry-a", "telemetry-b"):
        with setup_telemetry(service, "1.0").get_tracer("test").start_as_current_span("work"):
            pass
    services = [s.resource.attributes["service.name"] for s in spans.get_finished_spans()]
    assert services == ["switchboard-telemetry-a", "switchboard-telemetry-b"]

    extra = InMemorySpanExporter()
    processor = SimpleSpanProcessor(extra)
    add_span_processor(processor)
    remove_span_processor(processor)
    with setup_telemetry("telemetry-a", "1.0").get_tracer("test").start_as_current_span("later"):
        pass
    assert extra.get_finished_spans() == ()
    assert [s.name for s in spans.get_finished_spans()][-1] == "later"


def test_exported_spans_lose_query_strings_addresses_statements_and_exception_text(
    spans: InMemorySpanExporter,
) -> None:
    tracer = setup_telemetry("telemetry-a", "1.0").get_tracer("test")
    with tracer.start_as_current_span("GET /v1/notes") as span:
        span.set_attributes(
            {
                "http.url": "http://notes/v1/notes?q=Erika+Mustermann",
                "http.target": "/v1/notes?q=Erika",
                "url.query": "q=Erika",
                "net.peer.ip": "203.0.113.7",
                "client.address": "203.0.113.7",
                "db.statement": '{"caller.name": "Erika Mustermann"}',
                "http.route": "/v1/notes",
            }
        )
        span.record_exception(ValueError("caller Erika Mustermann, +4915211014450"))
        span.set_status(StatusCode.ERROR, "ValueError: Heizung defekt bei Erika")
    [exported] = spans.get_finished_spans()
    assert dict(exported.attributes or {}) == {
        "http.url": "http://notes/v1/notes",
        "http.target": "/v1/notes",
        "http.route": "/v1/notes",
    }
    [exception] = exported.events
    assert exception.attributes == {"exception.type": "ValueError", "exception.escaped": "False"}
    assert exported.status.status_code is StatusCode.ERROR
    assert exported.status.description is None


async def test_instrumented_app_traces_routes_privately_and_skips_probes(
    spans: InMemorySpanExporter,
) -> None:
    provider = setup_telemetry("telemetry-a", "1.0")
    app = FastAPI(telemetry=http_telemetry(provider, tracing=True))

    @app.get("/v1/search")
    async def search(q: str) -> dict[str, str]:
        return {"q": q}

    @app.get("/v1/fail")
    async def fail() -> None:
        raise ValueError("Erika Mustermann called about the Heizung")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    instrument_app(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/v1/search", params={"q": "Erika Mustermann"})).status_code == 200
        assert (await client.get("/v1/fail")).status_code == 500
        assert (await client.get("/healthz")).status_code == 200

    finished = spans.get_finished_spans()
    assert [(s.name, s.kind) for s in finished] == [
        ("GET /v1/search", SpanKind.SERVER),
        ("GET /v1/fail", SpanKind.SERVER),
    ]
    search_span, fail_span = finished
    assert (search_span.attributes or {})["http.route"] == "/v1/search"
    assert (fail_span.attributes or {})["http.response.status_code"] == 500
    assert (fail_span.attributes or {})["error.type"] == "ValueError"  # the type, not the text
    for span in finished:
        said = _everything_said(span)
        assert not [p for p in PERSONAL if p in said], said


class _Collector(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP posts and remembers their paths."""

    paths: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


_EMIT = """
import logging
from opentelemetry import metrics
from switchboard_platform.logs import configure_logging
from switchboard_platform.telemetry import setup_telemetry
configure_logging("otlp-probe")
provider = setup_telemetry("otlp-probe", "1.0")
with provider.get_tracer("probe").start_as_current_span("probe"):
    logging.getLogger("probe").warning("probe line")
metrics.get_meter("probe").create_counter("probe_total").add(1)
"""


def test_traces_metrics_and_logs_go_to_the_otlp_endpoint_when_one_is_set() -> None:
    paths: list[str] = []
    handler = type("Handler", (_Collector,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        }
        result = subprocess.run(
            [sys.executable, "-c", _EMIT], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert {"/v1/traces", "/v1/metrics", "/v1/logs"} <= set(paths), (paths, result.stderr)

"""JSON log lines: trace context, service and tenant in every line, no personal data in any."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from switchboard_contracts import encode
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.samples import CALLER_PHONE, sample_event, sample_payload
from switchboard_platform.auth import AgentUser, ClientUser, TokenVerifier
from switchboard_platform.consumer import EventPipeline, RawRecord
from switchboard_platform.health import Health
from switchboard_platform.logs import (
    AccessLogPrivacy,
    JsonLinesHandler,
    bind_tenant,
    configure_logging,
    current_tenant,
    log_scope,
)
from switchboard_platform.settings import ServiceSettings
from switchboard_platform.telemetry import http_telemetry, instrument_app, setup_telemetry
from switchboard_platform.testing.kafka import raw_record
from switchboard_platform.testing.tokens import auth_header

log = logging.getLogger("test_logs")
CALLER_NAME = sample_payload(CallReceived).caller.name


class Lines:
    """The JSON lines written to a stream, parsed."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def all(self) -> list[dict[str, Any]]:
        """Every line so far."""
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def with_message(self, message: str) -> dict[str, Any]:
        """The one line whose message is `message`."""
        [line] = [line for line in self.all() if line["message"] == message]
        return line


@pytest.fixture
def lines() -> Iterator[Lines]:
    """JSON lines of service `notes`, from every logger at INFO and above, during the test."""
    stream = io.StringIO()
    handler = JsonLinesHandler("notes", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield Lines(stream)
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_line_logged_in_a_span_carries_trace_span_service_tenant_and_extras(
    lines: Lines,
) -> None:
    tracer = setup_telemetry("logs-test", "1.0").get_tracer("test")
    with tracer.start_as_current_span("handle") as span, log_scope(tenant="t-17"):
        log.info("note stored", extra={"note_id": "n-1"})
    line = lines.with_message("note stored")
    ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert (line["service"], line["tenant"], line["note_id"]) == ("notes", "t-17", "n-1")
    assert (line["level"], line["logger"]) == ("INFO", "test_logs")
    assert line["time"].endswith("+00:00")


def test_a_line_outside_spans_and_scopes_has_null_trace_and_tenant(lines: Lines) -> None:
    log.warning("idle")
    line = lines.with_message("idle")
    assert (line["trace_id"], line["span_id"], line["tenant"]) == (None, None, None)


async def test_a_tenant_bound_in_a_worker_thread_stays_in_its_scope_only() -> None:
    with log_scope():
        await asyncio.to_thread(bind_tenant, "t-3")  # as a sync FastAPI dependency does
        assert current_tenant() == "t-3"
    assert current_tenant() is None


def test_exception_messages_are_withheld_unless_the_error_is_a_network_failure(
    lines: Lines,
) -> None:
    try:
        try:
            raise KeyError(CALLER_NAME)
        except KeyError as exc:
            raise ValueError(f"caller {CALLER_PHONE} is invalid") from exc
    except ValueError:
        log.exception("handler failed")
    try:
        raise ConnectionRefusedError("mongodb 127.0.0.1:27017 refused")
    except OSError:
        log.exception("database away")
    failed = lines.with_message("handler failed")["exc_info"]
    assert "builtins.KeyError (message withheld)" in failed
    assert "builtins.ValueError (message withheld)" in failed
    assert "test_logs.py" in failed
    assert CALLER_NAME not in failed
    assert CALLER_PHONE not in failed
    away = lines.with_message("database away")["exc_info"]
    assert "ConnectionRefusedError: mongodb 127.0.0.1:27017 refused" in away


@dataclass
class _DeadLetters:
    sent: list[str] = field(default_factory=list)

    async def send(
        self, record: RawRecord, kind: str, reason: str, *, without_value: bool = False
    ) -> None:
        self.sent.append(kind)


async def test_consumer_logs_carry_the_events_tenant_and_no_payload_text(lines: Lines) -> None:
    event = sample_event(CallReceived, tenant_id="t-42")

    async def handler(e: Any) -> None:
        raise ValueError(f"cannot take {e.data.caller.name}, {e.data.caller.phone}")

    dead_letters = _DeadLetters()
    pipeline = EventPipeline(
        service="notes",
        payload_type=CallReceived,
        handler=handler,
        dead_letters=cast(Any, dead_letters),
        health=Health(),
    )
    record = raw_record(encode(event), offset=7)
    with log_scope():
        await pipeline.process(record)
    assert dead_letters.sent == ["handler_error"]
    line = lines.with_message("handler failed; dead-lettering")
    assert (line["tenant"], line["event_id"]) == ("t-42", event.id)
    text = json.dumps(lines.all())
    assert event.data.caller.name not in text
    assert CALLER_PHONE not in text


async def test_http_requests_log_the_callers_tenant_each_in_its_own_scope(lines: Lines) -> None:
    app = FastAPI(telemetry=http_telemetry(setup_telemetry("logs-test", "1.0"), tracing=True))
    app.state.token_verifier = TokenVerifier(ServiceSettings(environment="test"))

    @app.get("/client")
    async def as_client(principal: ClientUser) -> None:
        log.info("client request")

    @app.get("/agent")
    async def as_agent(principal: AgentUser) -> None:
        log.info("agent request")

    instrument_app(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/client", headers=auth_header("client", tenant="t-9"))).is_success
        assert (await client.get("/agent", headers=auth_header("agent"))).is_success
    client_line = lines.with_message("client request")
    assert client_line["tenant"] == "t-9"
    assert client_line["trace_id"] is not None
    assert lines.with_message("agent request")["tenant"] is None


def test_uvicorn_access_lines_lose_the_query_string_and_client_address() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:51000", "GET", "/v1/notes?q=Anna+Schmidt", "1.1", 200),
        None,
    )
    AccessLogPrivacy().filter(record)
    assert record.getMessage() == '- - "GET /v1/notes HTTP/1.1" 200'


@pytest.fixture
def untouched_logging() -> Iterator[None]:
    """Put back what `configure_logging` changes process-wide."""
    names = ("", "faststream", "httpx", "uvicorn.access")
    saved = [
        (logger, list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
        for logger in map(logging.getLogger, names)
    ]
    yield
    for logger, handlers, filters, level, propagate in saved:
        logger.handlers[:], logger.filters[:] = handlers, filters
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.usefixtures("untouched_logging")
def test_configure_logging_replaces_its_own_handler_and_routes_faststream_through_it() -> None:
    # an earlier test of this process may have configured logging: its handler is replaced
    before = [h for h in logging.getLogger().handlers if not isinstance(h, JsonLinesHandler)]
    configure_logging("one")
    configure_logging("two")
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, JsonLinesHandler)]
    assert len(ours) == 1
    assert [h for h in root.handlers if h not in ours] == before
    assert logging.getLogger("faststream").propagate
    assert logging.getLogger("faststream").handlers == []
    assert logging.getLogger("httpx").level == logging.WARNING
    access = logging.getLogger("uvicorn.access").filters
    assert sum(isinstance(f, AccessLogPrivacy) for f in access) == 1

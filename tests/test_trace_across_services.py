"""One call, one trace: intake's HTTP request → call.received → notes → note.created.

Intake and notes run in this process against the session's real broker and database; an
in-memory exporter receives every span, as an OTLP collector would. The same flow proves
that no span and no log line carries the caller's name, number or concern.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app as create_intake
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app as create_notes
from switchboard_platform.logs import JsonLinesHandler
from switchboard_platform.telemetry import add_span_processor, remove_span_processor
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header

CALLER = {"name": "Quirin Zauberhold", "phone": "0170 4455667", "company": "Zauberhold GmbH"}
CONCERN = "Wasserschaden im Treppenhaus, bitte dringend zurückrufen"
CONTACT = "Dr. Hildegard Ostwind"
PERSONAL = ("Quirin", "Zauberhold", "4455667", "Wasserschaden", "Treppenhaus", "Ostwind")


@dataclass(frozen=True)
class Flow:
    """What the module's one captured call left behind."""

    tenant: str
    call_id: str
    spans: tuple[ReadableSpan, ...]
    log_lines: list[str]


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """Receives every span of every service in the process while this module runs."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    add_span_processor(processor)
    yield exporter
    remove_span_processor(processor)


@pytest.fixture(scope="module")
def log_stream() -> Iterator[io.StringIO]:
    """JSON log lines of the process at INFO and above while this module runs.

    Lines of `httpx` are left out: that is this test's own client (services quiet it).
    """
    stream = io.StringIO()
    handler = JsonLinesHandler("test", stream)
    handler.addFilter(lambda record: record.name != "httpx")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
async def flow(
    servers: ServerEndpoints, exporter: InMemorySpanExporter, log_stream: io.StringIO
) -> AsyncIterator[Flow]:
    """Onboard a tenant, capture a call at intake, let notes take it, search for it."""
    suffix = uuid.uuid4().hex[:8]
    intake_app = create_intake(service_settings(IntakeSettings, servers, f"intake_trace_{suffix}"))
    notes_app = create_notes(service_settings(NotesSettings, servers, f"notes_trace_{suffix}"))
    async with running_app(intake_app) as intake, running_app(notes_app) as notes:
        tenant = await _onboard(intake)
        body = {
            "tenant_id": tenant,
            "caller": CALLER,
            "concern": CONCERN,
            "contact_person": CONTACT,
            "started_at": "2025-03-04T10:15:00+01:00",
            "duration_seconds": 95,
        }
        reply = await intake.post("/v1/calls", json=body, headers=auth_header("agent"))
        assert reply.status_code == 201, reply.text
        call_id = reply.json()["id"]
        client = auth_header("client", tenant=tenant)
        await _until(lambda: _has_note(notes, client))
        search = {"q": CALLER["name"], "contact_person": CONTACT}
        found = (await notes.get("/v1/notes", params=search, headers=client)).json()["items"]
        assert [n["call_id"] for n in found] == [call_id]
        # Other tests' calls may still be on the topic: wait for this call's note.created
        await _until(lambda: _published_note_of_request(exporter))
        yield Flow(
            tenant, call_id, exporter.get_finished_spans(), log_stream.getvalue().splitlines()
        )


async def _onboard(intake: httpx.AsyncClient) -> str:
    body = {"name": "Hausverwaltung Lindner", "industry": "other"}
    reply = await intake.post("/v1/tenants", json=body, headers=auth_header("operator"))
    assert reply.status_code == 201, reply.text
    tenant: str = reply.json()["id"]
    return tenant


async def _has_note(notes: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    return bool((await notes.get("/v1/notes", headers=headers)).json()["items"])


async def _published_note_of_request(exporter: InMemorySpanExporter) -> bool:
    """Whether the `note.created` of the call posted to intake has been published."""
    spans = exporter.get_finished_spans()
    requests = {
        s.context.trace_id
        for s in spans
        if s.name == "POST /v1/calls" and s.kind is SpanKind.SERVER
    }
    return any(s.name == "note.created publish" and s.context.trace_id in requests for s in spans)


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def _tree(spans: list[ReadableSpan], root: ReadableSpan) -> str:
    """The trace below `root` as indented lines: name, kind and service of each span."""
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        service = span.resource.attributes.get("service.name")
        lines.append(f"{'  ' * depth}{span.name} [{span.kind.name}] ({service})")
        for child in spans:
            if child.parent is not None and child.parent.span_id == span.context.span_id:
                walk(child, depth + 1)

    walk(root, 0)
    return "\n".join(lines)


def _child(
    spans: list[ReadableSpan], parent: ReadableSpan, name: str, kind: SpanKind
) -> ReadableSpan:
    """The one span named `name` whose parent is `parent`."""
    found = [
        s
        for s in spans
        if s.name == name
        and s.kind is kind
        and s.parent is not None
        and s.parent.span_id == parent.context.span_id
    ]
    assert len(found) == 1, f"{name} under {parent.name}: {len(found)} found"
    return found[0]


def test_one_trace_runs_from_the_intake_request_through_notes_to_note_created(flow: Flow) -> None:
    [request] = [s for s in flow.spans if s.name == "POST /v1/calls" and s.kind is SpanKind.SERVER]
    trace_id = request.context.trace_id
    trace = [s for s in flow.spans if s.context.trace_id == trace_id]
    print(f"\ntrace {trace_id:032x}\n{_tree(trace, request)}")

    create_call = _child(trace, request, "call.received create", SpanKind.PRODUCER)
    _child(trace, create_call, "call.received publish", SpanKind.PRODUCER)
    consume = _child(trace, create_call, "call.received process", SpanKind.CONSUMER)
    create_note = _child(trace, consume, "note.created create", SpanKind.PRODUCER)
    _child(trace, create_note, "note.created publish", SpanKind.PRODUCER)

    # the outbox relay and the notes consumer continued the trace from what was stored and sent
    assert create_call.parent is not None
    assert create_call.parent.is_remote
    assert consume.parent is not None
    assert consume.parent.is_remote
    assert (consume.attributes or {})["messaging.kafka.message.key"] == flow.tenant
    writes = [s for s in trace if s.name.endswith(".insert") and s.kind is SpanKind.CLIENT]
    assert {s.parent.span_id for s in writes if s.parent} == {
        request.context.span_id,
        consume.context.span_id,
    }, "MongoDB writes are traced inside the request and the consumer"


def _said(span: ReadableSpan) -> str:
    parts = [span.name, span.status.description or ""]
    parts += [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        parts += [event.name, *(str(v) for v in (event.attributes or {}).values())]
    for link in span.links:
        parts += [str(v) for v in (link.attributes or {}).values()]
    return " ".join(parts)


def test_no_span_carries_the_callers_name_number_or_concern(flow: Flow) -> None:
    assert any(s.name == "GET /v1/notes" for s in flow.spans), "the search was traced"
    leaks = {s.name: p for s in flow.spans for p in PERSONAL if p in _said(s)}
    assert leaks == {}


def test_no_log_line_carries_the_callers_name_number_or_concern(flow: Flow) -> None:
    assert flow.log_lines, "the flow logged something"
    leaks = [line for line in flow.log_lines for p in PERSONAL if p in line]
    assert leaks == []
    assert all("trace_id" in json.loads(line) for line in flow.log_lines)

"""A call's trace without a tracing backend: an OTLP/HTTP receiver and a terminal waterfall.

`switchboard dev` starts `otlp_receiver` and points every service at it
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `SWITCHBOARD_TRACING=on`). It takes what the OpenTelemetry
SDK exports over OTLP/HTTP (protobuf or JSON, gzip or not) and appends each span as one JSON
line to `.data/traces/spans.jsonl` (kept to two files of `MAX_FILE_BYTES`); metrics and log
records are acknowledged and dropped (the terminal shows the logs already).

`switchboard trace <call-id>` finds the trace a call belongs to — the consumers' spans name
it in `switchboard.call_id` — and prints it as a waterfall: each span's service, start
offset, duration and status, indented under its parent.

The spans arrive already stripped of what could hold personal data (the services' export
pipeline, `switchboard_platform.telemetry`); this file adds nothing to them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from switchboard_dev.command import SubParsers
from switchboard_dev.config import workspace_root

HOST = "127.0.0.1"
SPANS_FILE = "spans.jsonl"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_REQUEST_BYTES = 16 * 1024 * 1024
CALL_ID_ATTRIBUTE = "switchboard.call_id"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}
_STATUSES = {
    Status.STATUS_CODE_UNSET: "unset",
    Status.STATUS_CODE_OK: "ok",
    Status.STATUS_CODE_ERROR: "error",
}
Say = Callable[[str], None]


# storing ------------------------------------------------------------------------------------


class SpanFile:
    """Appends span records as JSON lines; past `max_bytes` the file becomes `spans.1.jsonl`."""

    def __init__(self, folder: Path, *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        """The file being written."""
        return self.folder / SPANS_FILE

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Write `records`; return how many."""
        lines = [json.dumps(r, separators=(",", ":")) + "\n" for r in records]
        if not lines:
            return 0
        with self._lock:
            if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                self.path.replace(self.folder / "spans.1.jsonl")
            with self.path.open("a", encoding="utf-8") as out:
                out.writelines(lines)
        return len(lines)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def span_records(request: ExportTraceServiceRequest) -> Iterator[dict[str, Any]]:
    """One flat record per span of an OTLP export request."""
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        service = str(resource.get("service.name", "unknown")).removeprefix("switchboard-")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None,
                    "name": span.name,
                    "kind": _KINDS.get(span.kind, "internal"),
                    "service": service,
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                    "status": _STATUSES.get(span.status.code, "unset"),
                    "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                }


def _parse(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if "json" in content_type:
        json_format.Parse(body, request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(body)
    return request


# receiving ----------------------------------------------------------------------------------


def _handler(spans: SpanFile) -> type[BaseHTTPRequestHandler]:
    acknowledgements: dict[str, Message] = {
        "/v1/traces": ExportTraceServiceResponse(),
        "/v1/metrics": ExportMetricsServiceResponse(),
        "/v1/logs": ExportLogsServiceResponse(),
    }

    class OtlpHttp(BaseHTTPRequestHandler):
        """POST /v1/traces (kept), /v1/metrics and /v1/logs (acknowledged, dropped)."""

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in acknowledgements:
                self._answer(404, b"", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._answer(413, b"", "text/plain")
                return
            body = self.rfile.read(length)
            content_type = self.headers.get("Content-Type", "application/x-protobuf")
            if path == "/v1/traces":
                try:
                    if self.headers.get("Content-Encoding", "").lower() == "gzip":
                        body = gzip.decompress(body)
                    spans.append(span_records(_parse(body, content_type)))
                except (DecodeError, json_format.ParseError, OSError, EOFError):
                    self._answer(400, b"", "text/plain")
                    return
            acknowledgement = acknowledgements[path]
            if "json" in content_type:
                self._answer(200, json_format.MessageToJson(acknowledgement).encode(), content_type)
            else:
                self._answer(200, acknowledgement.SerializeToString(), "application/x-protobuf")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: services export every few seconds."""

    return OtlpHttp


@contextmanager
def otlp_receiver(folder: Path, port: int = 0) -> Iterator[str]:
    """Receive OTLP/HTTP on 127.0.0.1:`port` (0: any free port); yield its endpoint URL."""
    server = ThreadingHTTPServer((HOST, port), _handler(SpanFile(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSpan:
    """One span as the receiver stored it."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any]

    @property
    def duration_ms(self) -> float:
        """How long it took."""
        return max(0, self.end_ns - self.start_ns) / 1e6

    @classmethod
    def of(cls, record: dict[str, Any]) -> StoredSpan:
        """The span of one JSON line."""
        return cls(
            trace_id=record["trace_id"],
            span_id=record["span_id"],
            parent_span_id=record.get("parent_span_id"),
            name=record["name"],
            kind=record.get("kind", "internal"),
            service=record.get("service", "unknown"),
            start_ns=int(record["start_ns"]),
            end_ns=int(record["end_ns"]),
            status=record.get("status", "unset"),
            attributes=dict(record.get("attributes") or {}),
        )


def read_spans(folder: Path) -> list[StoredSpan]:
    """Every stored span, the older file's first; torn lines (a write in progress) skipped."""
    spans: list[StoredSpan] = []
    for path in (folder / "spans.1.jsonl", folder / SPANS_FILE):
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    spans.append(StoredSpan.of(json.loads(line)))
                except (ValueError, KeyError, TypeError):
                    continue
    return spans


def find_trace(spans: list[StoredSpan], wanted: str) -> str | None:
    """The trace id `wanted` names: a trace id itself, or the newest trace of a call id."""
    wanted = wanted.strip().lower()
    if _TRACE_ID.match(wanted) and any(s.trace_id == wanted for s in spans):
        return wanted
    of_call = [s for s in spans if str(s.attributes.get(CALL_ID_ATTRIBUTE, "")).lower() == wanted]
    if not of_call:
        return None
    return max(of_call, key=lambda s: s.start_ns).trace_id


def waterfall(spans: list[StoredSpan], trace_id: str, *, width: int = 30) -> str:
    """The trace as text: one line per span, children under their parent by start time."""
    own = sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start_ns)
    if not own:
        return f"trace {trace_id}: no spans stored"
    ids = {s.span_id for s in own}
    children: dict[str | None, list[StoredSpan]] = {}
    for span in own:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    start = own[0].start_ns
    end = max(s.end_ns for s in own)
    total = max(end - start, 1)
    call_ids = sorted(
        {str(s.attributes[CALL_ID_ATTRIBUTE]) for s in own if CALL_ID_ATTRIBUTE in s.attributes}
    )
    header = f"trace {trace_id}"
    if call_ids:
        header += f"  call {', '.join(call_ids)}"
    services = sorted({s.service for s in own})
    # columns as wide as their longest figure: a call held up for seconds stays aligned
    start_w = max(7, len(f"{total / 1e6:.1f}"))
    took_w = max(8, len(f"{max(s.duration_ms for s in own):.1f}"))
    lines = [
        f"{header}\n{len(own)} spans in {len(services)} services ({', '.join(services)}), "
        f"{total / 1e6:.1f} ms from the first span's start to the last one's end",
        "",
        f"{'start':>{start_w + 2}} {'duration':>{took_w + 2}}  {'status':<6} {'service':<10} "
        f"{'timeline':<{width}}  span",
    ]

    def walk(span: StoredSpan, depth: int) -> None:
        offset = span.start_ns - start
        first = int(offset / total * width)
        length = max(1, round((span.end_ns - span.start_ns) / total * width))
        bar = (" " * first + "█" * length)[:width]
        lines.append(
            f"{offset / 1e6:>{start_w}.1f}ms {span.duration_ms:>{took_w}.1f}ms  {span.status:<6} "
            f"{span.service:<10} {bar:<{width}}  {'  ' * depth}{span.name} [{span.kind}]"
        )
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    lines += ["", f'logs of this call: the services\' JSON lines with "trace_id": "{trace_id}"']
    return "\n".join(lines)


def recent_traces(spans: list[StoredSpan], limit: int = 20) -> list[str]:
    """One line per recent trace that belongs to a call: when, trace id, call id, span count."""
    calls: dict[str, tuple[int, str]] = {}
    counts: dict[str, int] = {}
    for span in spans:
        counts[span.trace_id] = counts.get(span.trace_id, 0) + 1
        call = span.attributes.get(CALL_ID_ATTRIBUTE)
        if call is not None:
            first = calls.get(span.trace_id)
            if first is None or span.start_ns < first[0]:
                calls[span.trace_id] = (span.start_ns, str(call))
    newest = sorted(calls.items(), key=lambda item: item[1][0], reverse=True)[:limit]
    return [f"{tid}  call {call}  {counts[tid]} spans" for tid, (_, call) in newest]


# the command --------------------------------------------------------------------------------


def add_parser(subparsers: SubParsers, name: str) -> argparse.ArgumentParser:
    """Add `trace` and its options."""
    parser = subparsers.add_parser(
        name,
        help="print a call's trace (from `switchboard dev`) as a waterfall",
        description=(
            "Print the trace of a call, as the services of `switchboard dev` exported it to "
            "the runner (.data/traces): every span with its service, start, duration and "
            "status. Give a call id (or a trace id); without one, list recent calls' traces."
        ),
    )
    parser.add_argument("call", nargs="?", help="a call id, or a trace id (32 hex digits)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the dev runner's data folder (default: SWITCHBOARD_DEV_DATA_DIR or .data)",
    )
    parser.add_argument("--width", type=int, default=30, help="width of the timeline column")
    parser.add_argument(
        "--last", type=int, default=20, help="how many recent calls' traces to list (default 20)"
    )
    return parser


def traces_folder(data_dir: Path | None) -> Path:
    """Where the dev runner keeps spans: `<data dir>/traces`."""
    if data_dir is None:
        from switchboard_dev.config import DevSettings

        data_dir = DevSettings().data_dir or workspace_root(Path.cwd()) / ".data"
    return data_dir / "traces"


def run(args: argparse.Namespace) -> int:
    """Print the waterfall of the call's trace, or the list of recent ones."""
    folder = traces_folder(args.data_dir)
    spans = read_spans(folder)
    if not spans:
        print(f"no spans in {folder}: is `switchboard dev` running with tracing on?")
        return 1
    if args.call is None:
        print("\n".join(recent_traces(spans, args.last)) or "no call's trace stored yet")
        return 0
    trace_id = find_trace(spans, args.call)
    if trace_id is None:
        print(f"no trace of {args.call!r} in {folder} (spans arrive a few seconds late)")
        return 1
    print(waterfall(spans, trace_id, width=args.width))
    return 0

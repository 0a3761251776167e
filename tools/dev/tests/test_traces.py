"""The dev runner's OTLP receiver and `switchboard trace`, without services."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from switchboard_dev.traces import SpanFile, find_trace, otlp_receiver, read_spans, waterfall

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def _span(span_id: str, parent: str, name: str, start_ms: int, end_ms: int, **attrs: str) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name,
        kind=Span.SPAN_KIND_SERVER if not parent else Span.SPAN_KIND_CONSUMER,
        start_time_unix_nano=start_ms * 1_000_000,
        end_time_unix_nano=end_ms * 1_000_000,
        status=Status(code=Status.STATUS_CODE_OK),
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()],
    )


def _request(service: str, *spans: Span) -> ExportTraceServiceRequest:
    resource = ResourceSpans()
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=f"switchboard-{service}"))
    )
    resource.scope_spans.append(ScopeSpans(spans=list(spans)))
    return ExportTraceServiceRequest(resource_spans=[resource])


def test_receiver_keeps_protobuf_and_gzip_and_acknowledges_metrics(tmp_path: Path) -> None:
    root = _span("00f067aa0ba902b7", "", "POST /v1/calls", 0, 30)
    child = _span("00f067aa0ba902b8", "00f067aa0ba902b7", "call.received process", 40, 60)
    with otlp_receiver(tmp_path) as endpoint:
        headers = {"Content-Type": "application/x-protobuf"}
        body = _request("intake", root).SerializeToString()
        assert httpx.post(f"{endpoint}/v1/traces", content=body, headers=headers).is_success
        zipped = gzip.compress(_request("notes", child).SerializeToString())
        reply = httpx.post(
            f"{endpoint}/v1/traces", content=zipped, headers={**headers, "Content-Encoding": "gzip"}
        )
        assert reply.is_success
        assert httpx.post(f"{endpoint}/v1/metrics", content=b"", headers=headers).is_success
        assert (
            httpx.post(f"{endpoint}/v1/traces", content=b"\xff\x00", headers=headers).status_code
            == 400
        )
    spans = read_spans(tmp_path)
    assert [(s.service, s.name, s.kind) for s in spans] == [
        ("intake", "POST /v1/calls", "server"),
        ("notes", "call.received process", "consumer"),
    ]


def test_receiver_takes_otlp_json_too(tmp_path: Path) -> None:
    from google.protobuf import json_format

    body = json_format.MessageToJson(_request("intake", _span("00f067aa0ba902b7", "", "x", 0, 1)))
    with otlp_receiver(tmp_path) as endpoint:
        reply = httpx.post(
            f"{endpoint}/v1/traces", content=body, headers={"Content-Type": "application/json"}
        )
        assert reply.is_success
        assert json.loads(reply.text) == {}
    assert [s.name for s in read_spans(tmp_path)] == ["x"]


def test_trace_is_found_by_call_id_and_drawn_parent_first(tmp_path: Path) -> None:
    file = SpanFile(tmp_path)
    root = _span("00f067aa0ba902b7", "", "POST /v1/calls", 0, 100)
    late = _span("00f067aa0ba902b9", "00f067aa0ba902b7", "late", 80, 100)
    early = _span(
        "00f067aa0ba902b8", "00f067aa0ba902b7", "early", 10, 50, **{"switchboard.call_id": "c-1"}
    )
    from switchboard_dev.traces import span_records

    file.append(span_records(_request("intake", late, root, early)))
    spans = read_spans(tmp_path)
    trace_id = find_trace(spans, "c-1")
    assert trace_id == TRACE.hex()
    assert find_trace(spans, TRACE.hex()) == TRACE.hex()
    assert find_trace(spans, "unknown") is None
    drawn = waterfall(spans, TRACE.hex(), width=10).splitlines()
    body = [line for line in drawn if "ms " in line and "[" in line]
    assert [line.split()[-2] for line in body] == ["/v1/calls", "early", "late"]
    assert "call c-1" in drawn[0]


def test_a_trace_of_many_seconds_keeps_its_columns_aligned(tmp_path: Path) -> None:
    """A call whose note came 11 s later (a consumer still joining): the start column grows
    instead of pushing the row out of line (a CI run read such a row as no row at all)."""
    from switchboard_dev.traces import span_records

    root = _span("00f067aa0ba902b7", "", "POST /v1/calls", 0, 50)
    late = _span("00f067aa0ba902b8", "00f067aa0ba902b7", "call.received process", 10_954, 123_456)
    SpanFile(tmp_path).append(span_records(_request("notes", root, late)))
    drawn = waterfall(read_spans(tmp_path), TRACE.hex(), width=10).splitlines()
    header = next(line for line in drawn if line.split()[:2] == ["start", "duration"])
    rows = [line for line in drawn if line.rstrip().endswith("]")]
    assert len(rows) == 2
    for column in ("start", "duration"):  # each figure ends under its heading
        end = header.index(column) + len(column)
        assert [row[end - 2 : end] for row in rows] == ["ms", "ms"], drawn
    assert all(row.startswith(" ") for row in rows), drawn


def test_span_file_rotates_and_reads_both_files(tmp_path: Path) -> None:
    file = SpanFile(tmp_path, max_bytes=200)
    from switchboard_dev.traces import span_records

    for i in range(5):
        file.append(
            span_records(_request("notes", _span(f"00f067aa0ba902{i:02x}", "", f"s{i}", i, i + 1)))
        )
    assert (tmp_path / "spans.1.jsonl").exists()
    (tmp_path / "spans.jsonl").open("a").write('{"torn": ')
    names = [s.name for s in read_spans(tmp_path)]
    assert names[-1] == "s4"
    assert names == sorted(names)

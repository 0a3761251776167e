"""`switchboard trace <call-id>`: a call's trace from the terminal, as `make dev` has it.

Intake and notes run in this process against the session's broker and database; their
spans go through the services' export pipeline (which strips personal data) to the OTLP
exporter, pointed at the dev runner's receiver (`switchboard_dev.traces`), which writes
them under a data folder. The command then prints the waterfall, and the services' JSON log
lines carry the same trace id (shown with real processes in test_live_prometheus.py).
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from switchboard_dev.cli import main
from switchboard_dev.traces import otlp_receiver, read_spans
from switchboard_intake.config import IntakeSettings
from switchboard_intake.main import create_app as create_intake
from switchboard_notes.config import NotesSettings
from switchboard_notes.main import create_app as create_notes
from switchboard_platform.telemetry import add_span_processor, remove_span_processor
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.kafka import start_groups_at_log_end
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings
from switchboard_platform.testing.tokens import auth_header

PERSONAL = ("Quirin", "Zauberhold", "4455667", "Wasserschaden")


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[Path, BatchSpanProcessor]]:
    """The runner's receiver, and the services' spans exported to it over OTLP/HTTP."""
    with otlp_receiver(tmp_path / "traces") as endpoint:
        processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), schedule_delay_millis=200
        )
        add_span_processor(processor)
        try:
            yield tmp_path, processor
        finally:
            remove_span_processor(processor)
            processor.shutdown()


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


async def test_trace_prints_the_calls_waterfall_across_services(
    servers: ServerEndpoints, exported: tuple[Path, BatchSpanProcessor]
) -> None:
    data_dir, processor = exported
    suffix = uuid.uuid4().hex[:8]
    intake_app = create_intake(
        service_settings(
            IntakeSettings,
            servers,
            f"intake_tr_{suffix}",
            kafka_consumer_group_prefix=f"intake-tr-{suffix}",
        )
    )
    notes_app = create_notes(
        service_settings(
            NotesSettings,
            servers,
            f"notes_tr_{suffix}",
            kafka_consumer_group_prefix=f"notes-tr-{suffix}",
        )
    )
    # groups of their own, at the end of the shared topics: neither a member another test
    # left in the services' usual groups nor the events earlier tests left hold the call up
    await start_groups_at_log_end(
        servers.kafka_bootstrap_servers,
        [s for app in (intake_app, notes_app) for s in app.state.runtime.subscriptions()],
    )
    async with running_app(intake_app) as intake, running_app(notes_app) as notes:
        tenant = (
            await intake.post(
                "/v1/tenants",
                json={"name": "Hausverwaltung Lindner", "industry": "other"},
                headers=auth_header("operator"),
            )
        ).json()["id"]
        reply = await intake.post(
            "/v1/calls",
            json={
                "tenant_id": tenant,
                "caller": {"name": "Quirin Zauberhold", "phone": "0170 4455667"},
                "concern": "Wasserschaden im Treppenhaus",
                "started_at": "2025-03-04T10:15:00+01:00",
            },
            headers=auth_header("agent"),
        )
        assert reply.status_code == 201, reply.text
        call_id = reply.json()["id"]
        client = auth_header("client", tenant=tenant)
        async with asyncio.timeout(20):
            while True:
                processor.force_flush()
                names = {s.name for s in read_spans(data_dir / "traces")}
                listed = (await notes.get("/v1/notes", headers=client)).json()["items"]
                if listed and "note.created publish" in names:
                    break
                await asyncio.sleep(0.1)
    processor.force_flush()

    code, out = _cli("trace", call_id, "--data-dir", str(data_dir))
    print(out)
    assert code == 0, out
    trace_id = re.search(r"^trace ([0-9a-f]{32})  call (\S+)", out, re.MULTILINE)
    assert trace_id is not None, out
    assert trace_id.group(2) == call_id
    lines = out.splitlines()
    rows = [line for line in lines if re.match(r"^\s*\d+\.\dms\s+\d+\.\dms", line)]
    spans = [" ".join(row.split()[4:]) for row in rows]  # the span column, after the bar

    def row_of(name: str) -> str:
        found = [row for row in rows if name in row]
        assert found, f"{name} not in\n{out}"
        return found[0]

    request = row_of("POST /v1/calls [server]")
    assert "intake" in request.split()
    assert rows[0] == request, "the intake request is the root, first"
    assert "notes" in row_of("call.received process [consumer]").split()
    assert "intake" in row_of("call.received create [producer]").split()
    assert "notes" in row_of("note.created publish [producer]").split()
    assert all(row.split()[2] in {"ok", "unset", "error"} for row in rows)
    assert len(spans) == len(rows) >= 6
    # nested: the consumer's span sits deeper than the request's
    assert row_of("call.received process").index("call.received process") > request.index(
        "POST /v1/calls"
    )
    assert not [p for p in PERSONAL if p in out], "the waterfall shows no personal data"

    # other apps of this test process (other tests' fixtures) may export newer calls' traces
    code, listing = _cli("trace", "--data-dir", str(data_dir), "--last", "500")
    assert code == 0
    assert call_id in listing
    code, newest = _cli("trace", "--data-dir", str(data_dir), "--last", "1")
    assert code == 0
    assert len(newest.splitlines()) == 1
    assert _cli("trace", "no-such-call", "--data-dir", str(data_dir))[0] == 1

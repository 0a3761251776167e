"""End-to-end latencies of the flows operators watch, with the trace that shows one.

`observe_flow("capture_to_note", started)` records how long a flow took, in the histogram
`switchboard_flow_latency_seconds{flow=...}`. When a span is recording, the observation
carries its trace id as an exemplar (OpenMetrics exposition), so a slow bucket on a
dashboard links to a trace of that very call.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry import trace

from .metrics import FLOW_LATENCY

CAPTURE_TO_NOTE = "capture_to_note"
NOTE_TO_EMAIL = "note_to_email"
NOTE_TO_SMS = "note_to_sms"
NOTE_TO_CRM = "note_to_crm"


def observe_flow(flow: str, started: datetime, *, ended: datetime | None = None) -> float:
    """Record one flow from `started` to `ended` (default now); return the seconds."""
    seconds = max(0.0, ((ended or datetime.now(UTC)) - started).total_seconds())
    context = trace.get_current_span().get_span_context()
    exemplar = {"trace_id": format(context.trace_id, "032x")} if context.is_valid else None
    FLOW_LATENCY.labels(flow=flow).observe(seconds, exemplar=exemplar)
    return seconds

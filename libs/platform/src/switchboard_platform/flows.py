"""End-to-end latencies of the flows operators watch, with the trace that shows one.

`observe_flow("capture_to_note", started)` records how long a flow took, in the histogram
`switchboard_flow_latency_seconds{flow=...}`. The observation carries a trace id as an
exemplar (OpenMetrics exposition), so a slow bucket on a dashboard links to a trace of that
very call: the current span's, or `trace_id` for work done outside the flow's trace (a
sender loop that stored the id with the work it picked up, see `current_trace_id`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry import trace

from .metrics import FLOW_LATENCY

CAPTURE_TO_NOTE = "capture_to_note"
NOTE_TO_EMAIL = "note_to_email"
NOTE_TO_SMS = "note_to_sms"
NOTE_TO_CRM = "note_to_crm"
FLOWS = (CAPTURE_TO_NOTE, NOTE_TO_EMAIL, NOTE_TO_SMS, NOTE_TO_CRM)


def current_trace_id() -> str | None:
    """The trace id (32 hex digits) of the span in progress, or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def observe_flow(
    flow: str,
    started: datetime,
    *,
    ended: datetime | None = None,
    trace_id: str | None = None,
) -> float:
    """Record one flow from `started` to `ended` (default now); return the seconds.

    The exemplar is `trace_id` when given, else the current span's trace id, if any.
    """
    seconds = max(0.0, ((ended or datetime.now(UTC)) - started).total_seconds())
    exemplar_id = trace_id or current_trace_id()
    exemplar = {"trace_id": exemplar_id} if exemplar_id else None
    FLOW_LATENCY.labels(flow=flow).observe(seconds, exemplar=exemplar)
    return seconds

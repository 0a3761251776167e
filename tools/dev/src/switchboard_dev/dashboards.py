"""The Grafana dashboards, as code (grafana-foundation-sdk): an overview and one per service.

`switchboard generate` writes them to `deploy/observability/grafana/dashboards/`, where
Grafana's provisioning (docker-compose.yml) loads them; `tests/observability` runs every
query of every panel against a real Prometheus scraping the running suite and fails on a
query that returns no data. Queries use only the platform's metrics (every service has
them) plus each service's own (`switchboard_intake_*`, `switchboard_notify_*`,
`switchboard_retention_*`), and `$__rate_interval`, Grafana's own window variable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DashboardLinkType, DataSourceRef

from switchboard_platform.flows import CAPTURE_TO_NOTE, NOTE_TO_CRM, NOTE_TO_EMAIL, NOTE_TO_SMS

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"
JOBS = "intake|notes|notify|crm-sync|retention"
"""The scrape jobs of the services (compose: one per service; k8s: the PodMonitor's
`jobLabel`, app.kubernetes.io/name)."""


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and how its series are named."""

    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    """A panel: its title, unit, queries, and what it tells an operator."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    kind: str = "timeseries"  # or "stat"
    width: int = 12
    exemplars: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    """What a service's own dashboard shows beside the platform's panels."""

    name: str
    flows: tuple[str, ...] = ()
    extra: tuple[PanelSpec, ...] = field(default_factory=tuple)


def _q(expr: str, legend: str) -> Query:
    return Query(" ".join(expr.split()), legend)


def _http_error_ratio(selector: str, by: str) -> str:
    """5xx answers over all answers; 0 (not "no data") while nothing failed."""
    total = f"sum by ({by}) (rate(switchboard_http_requests_total{{{selector}}}[{RATE}]))"
    errors_selector = f'{selector}, status=~"5.."' if selector else 'status=~"5.."'
    errors = f"sum by ({by}) (rate(switchboard_http_requests_total{{{errors_selector}}}[{RATE}]))"
    return f"({errors} or {total} * 0) / {total}"


def _flow_quantiles(flows: Iterable[str]) -> tuple[Query, ...]:
    selector = f'flow=~"{"|".join(flows)}"'
    bucket = (
        f"sum by (le, flow) (rate(switchboard_flow_latency_seconds_bucket{{{selector}}}[{RATE}]))"
    )
    return (
        _q(f"histogram_quantile(0.5, {bucket})", "{{flow}} p50"),
        _q(f"histogram_quantile(0.99, {bucket})", "{{flow}} p99"),
    )


def _outbox_oldest_age(selector: str, by: str) -> str:
    """The active relay's view only: a standby keeps the value it had when it was active."""
    active = f"switchboard_outbox_relay_active{{{selector}}} == 1"
    age = f"switchboard_outbox_oldest_age_seconds{{{selector}}}"
    return f"max by ({by}) ({age} and on (job, instance, service) ({active}))"


ALL_FLOWS = (CAPTURE_TO_NOTE, NOTE_TO_EMAIL, NOTE_TO_SMS, NOTE_TO_CRM)

OVERVIEW: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Traffic and errors",
        (
            PanelSpec(
                "Calls captured",
                "reqps",
                (
                    _q(
                        f"""sum(rate(switchboard_http_requests_total{{service="intake",
                        method="POST", route="/v1/calls", status=~"2.."}}[{RATE}]))""",
                        "calls/s",
                    ),
                ),
                "Calls intake accepted per second (201, and idempotent repeats)",
                kind="stat",
                width=6,
            ),
            PanelSpec(
                "Services up",
                "short",
                (_q(f'sum(up{{job=~"{JOBS}"}})', "up"),),
                "Scrape targets of the services that answer /metrics",
                kind="stat",
                width=6,
            ),
            PanelSpec(
                "HTTP error ratio (5xx) by service",
                "percentunit",
                (_q(_http_error_ratio("", "service"), "{{service}}"),),
                "Share of answers that were server errors",
            ),
            PanelSpec(
                "HTTP requests by service",
                "reqps",
                (
                    _q(
                        f"sum by (service) (rate(switchboard_http_requests_total[{RATE}]))",
                        "{{service}}",
                    ),
                ),
                width=12,
            ),
            PanelSpec(
                "Requests shed by service",
                "reqps",
                (
                    _q(
                        f"sum by (service) (rate(switchboard_http_shed_total[{RATE}]))",
                        "{{service}}",
                    ),
                ),
                "Answered 503 unread: the process had SWITCHBOARD_HTTP_MAX_IN_FLIGHT requests "
                "in progress (decision 0023); clients retry. Lasting shedding: add replicas",
            ),
            PanelSpec(
                "Handler retries by service",
                "ops",
                (
                    _q(
                        f"sum by (service) (rate(switchboard_messages_failed_total[{RATE}]))",
                        "{{service}}",
                    ),
                ),
                "Event handler attempts that failed transiently (database away) and are retried",
            ),
        ),
    ),
    (
        "Flows",
        (
            PanelSpec(
                "Flow latency p50 / p99",
                "s",
                _flow_quantiles(ALL_FLOWS),
                "capture_to_note: call accepted → note stored; note_to_email / note_to_sms: "
                "note stored → provider accepted; note_to_crm: note stored → CRM accepted. "
                "Exemplars link to the trace of one call.",
                width=24,
                exemplars=True,
            ),
        ),
    ),
    (
        "Falling behind?",
        (
            PanelSpec(
                "Consumer lag by service and topic",
                "short",
                (
                    _q(
                        "sum by (service, topic) (switchboard_consumer_lag_messages)",
                        "{{service}} {{topic}}",
                    ),
                ),
                "Messages not yet handled (high watermark minus next offset), over partitions",
            ),
            PanelSpec(
                "Age of the newest handled event",
                "s",
                (
                    _q(
                        "time() - max by (service, topic) "
                        "(switchboard_consumer_last_event_time_seconds)",
                        "{{service}} {{topic}}",
                    ),
                ),
                "Now minus the event time of the newest event handled: grows while a "
                "consumer is stuck or nothing arrives",
            ),
            PanelSpec(
                "Oldest outbox event by service",
                "s",
                (_q(_outbox_oldest_age("", "service"), "{{service}}"),),
                "Age of the oldest event waiting to be published (the active relay's view)",
            ),
            PanelSpec(
                "Outbox pending by service",
                "short",
                (
                    _q(
                        "max by (service) (switchboard_outbox_pending_events)",
                        "{{service}}",
                    ),
                ),
            ),
            PanelSpec(
                "Notes behind intake (intake's push-back signal)",
                "short",
                (
                    _q(
                        "max by (group) (switchboard_intake_downstream_lag_messages)",
                        "{{group}}",
                    ),
                ),
                "Events of call.received the consumer groups have not committed; intake "
                "answers 503 past INTAKE_MAX_DOWNSTREAM_LAG",
                width=24,
            ),
        ),
    ),
    (
        "Dead letters and the outbox's failures",
        (
            PanelSpec(
                "Dead letters written",
                "short",
                (
                    _q(
                        "sum by (service, topic, reason) "
                        f"(increase(switchboard_messages_dead_lettered_total[{RATE}]))",
                        "{{service}} {{topic}} {{reason}}",
                    ),
                ),
                "Messages sent to <topic>.dlq: `switchboard dlq list` shows why",
            ),
            PanelSpec(
                "Dead-letter topics' depth",
                "short",
                (
                    _q(
                        "max by (topic) (switchboard_dead_letter_topic_messages)",
                        "{{topic}}",
                    ),
                ),
                "Messages on each <topic>.dlq (until its retention removes them)",
            ),
            PanelSpec(
                "Outbox publish failures and parked entries",
                "short",
                (
                    _q(
                        "sum by (service) "
                        f"(increase(switchboard_outbox_publish_failures_total[{RATE}]))",
                        "{{service}} failed passes",
                    ),
                    _q(
                        f"sum by (service) (increase(switchboard_outbox_parked_total[{RATE}]))",
                        "{{service}} parked",
                    ),
                ),
                "A failed pass is retried; a parked entry waits for an operator",
            ),
            PanelSpec(
                "Readiness by service and check",
                "short",
                (
                    _q(
                        "min by (service, check) (switchboard_ready)",
                        "{{service}} {{check}}",
                    ),
                ),
                "1: the check passes; 0: /readyz fails it (Kafka, MongoDB, outbox, consumers)",
            ),
        ),
    ),
)


def _service_panels(spec: ServiceSpec) -> tuple[tuple[str, tuple[PanelSpec, ...]], ...]:
    s = f'service="{spec.name}"'
    rows: list[tuple[str, tuple[PanelSpec, ...]]] = [
        (
            "HTTP",
            (
                PanelSpec(
                    "Requests by route and status",
                    "reqps",
                    (
                        _q(
                            f"sum by (route, status) "
                            f"(rate(switchboard_http_requests_total{{{s}}}[{RATE}]))",
                            "{{route}} {{status}}",
                        ),
                    ),
                    "Probes (/healthz, /readyz, /metrics) are not counted",
                ),
                PanelSpec(
                    "Latency p99 by route",
                    "s",
                    (
                        _q(
                            "histogram_quantile(0.99, sum by (le, route) "
                            f"(rate(switchboard_http_request_duration_seconds_bucket{{{s}}}[{RATE}])))",
                            "{{route}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Error ratio (5xx)",
                    "percentunit",
                    (_q(_http_error_ratio(s, "service"), "5xx share"),),
                    width=24,
                ),
            ),
        ),
        (
            "Events handled",
            (
                PanelSpec(
                    "Handled by topic",
                    "ops",
                    (
                        _q(
                            "sum by (topic) "
                            f"(rate(switchboard_messages_consumed_total{{{s}}}[{RATE}]))",
                            "{{topic}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Handler time p99 by topic",
                    "s",
                    (
                        _q(
                            "histogram_quantile(0.99, sum by (le, topic) "
                            f"(rate(switchboard_handler_duration_seconds_bucket{{{s}}}[{RATE}])))",
                            "{{topic}}",
                        ),
                    ),
                    "Includes retries of transient failures",
                ),
                PanelSpec(
                    "Lag by topic and partition",
                    "short",
                    (
                        _q(
                            f"sum by (topic, partition) (switchboard_consumer_lag_messages{{{s}}})",
                            "{{topic}}/{{partition}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Age of the newest handled event",
                    "s",
                    (
                        _q(
                            "time() - max by (topic) "
                            f"(switchboard_consumer_last_event_time_seconds{{{s}}})",
                            "{{topic}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Retries and dead letters by topic",
                    "short",
                    (
                        _q(
                            "sum by (topic) "
                            f"(increase(switchboard_messages_failed_total{{{s}}}[{RATE}]))",
                            "{{topic}} retried",
                        ),
                        _q(
                            "sum by (topic, reason) "
                            f"(increase(switchboard_messages_dead_lettered_total{{{s}}}[{RATE}]))",
                            "{{topic}} dead-lettered ({{reason}})",
                        ),
                    ),
                ),
                PanelSpec(
                    "Dead-letter topics' depth",
                    "short",
                    (
                        _q(
                            f"max by (topic) (switchboard_dead_letter_topic_messages{{{s}}})",
                            "{{topic}}",
                        ),
                    ),
                ),
            ),
        ),
        (
            "Outbox",
            (
                PanelSpec(
                    "Pending and oldest",
                    "short",
                    (
                        _q(f"max(switchboard_outbox_pending_events{{{s}}})", "pending events"),
                        _q(_outbox_oldest_age(s, "service"), "oldest (s)"),
                    ),
                ),
                PanelSpec(
                    "Published by topic",
                    "ops",
                    (
                        _q(
                            "sum by (topic) "
                            f"(rate(switchboard_outbox_published_total{{{s}}}[{RATE}]))",
                            "{{topic}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Publish failures, parked entries, active relays",
                    "short",
                    (
                        _q(
                            "sum(increase(switchboard_outbox_publish_failures_total"
                            f"{{{s}}}[{RATE}]))",
                            "failed passes",
                        ),
                        _q(
                            f"sum(increase(switchboard_outbox_parked_total{{{s}}}[{RATE}]))",
                            "parked",
                        ),
                        _q(f"sum(switchboard_outbox_relay_active{{{s}}})", "active relays"),
                    ),
                    "Exactly one replica's relay is active at a time",
                ),
                PanelSpec(
                    "Readiness by check",
                    "short",
                    (_q(f"min by (check) (switchboard_ready{{{s}}})", "{{check}}"),),
                ),
            ),
        ),
        (
            "Database",
            (
                PanelSpec(
                    "Commands by collection",
                    "ops",
                    (
                        _q(
                            "sum by (collection, command) "
                            f"(rate(switchboard_db_commands_total{{{s}}}[{RATE}]))",
                            "{{collection}} {{command}}",
                        ),
                    ),
                    "Round trips to MongoDB; divided by the calls, what a call costs the database",
                    width=24,
                ),
            ),
        ),
    ]
    own: list[PanelSpec] = []
    if spec.flows:
        own.append(
            PanelSpec(
                "Flow latency p50 / p99",
                "s",
                _flow_quantiles(spec.flows),
                "Exemplars link to the trace of one call",
                exemplars=True,
            )
        )
    own.extend(spec.extra)
    if own:
        rows.insert(0, (f"{spec.name}", tuple(own)))
    return tuple(rows)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "intake",
        extra=(
            PanelSpec(
                "Calls captured",
                "reqps",
                (
                    _q(
                        f"""sum by (status) (rate(switchboard_http_requests_total{{
                        service="intake", method="POST", route="/v1/calls"}}[{RATE}]))""",
                        "{{status}}",
                    ),
                ),
                "POST /v1/calls by answer: 201 accepted, 503 pushed back, 4xx refused",
            ),
            PanelSpec(
                "Consumers behind call.received",
                "short",
                (
                    _q(
                        "max by (group) (switchboard_intake_downstream_lag_messages)",
                        "{{group}}",
                    ),
                ),
                "Past INTAKE_MAX_DOWNSTREAM_LAG a capture answers 503 with Retry-After",
            ),
        ),
    ),
    ServiceSpec("notes", flows=(CAPTURE_TO_NOTE,)),
    ServiceSpec(
        "notify",
        flows=(NOTE_TO_EMAIL, NOTE_TO_SMS),
        extra=(
            PanelSpec(
                "Deliveries by channel and outcome",
                "short",
                (
                    _q(
                        "sum by (channel, outcome) "
                        f"(increase(switchboard_notify_deliveries_total[{RATE}]))",
                        "{{channel}} {{outcome}}",
                    ),
                ),
            ),
        ),
    ),
    ServiceSpec("crm-sync", flows=(NOTE_TO_CRM,)),
    ServiceSpec(
        "retention",
        extra=(
            PanelSpec(
                "Sweeps by status",
                "short",
                (_q("max by (status) (switchboard_retention_sweeps)", "{{status}}"),),
                "incomplete: a participant did not answer within RETENTION_ANSWER_TIMEOUT_S",
            ),
            PanelSpec(
                "Unfinished data-subject requests by deadline",
                "short",
                (
                    _q(
                        "max by (deadline) (switchboard_retention_dsr_unfinished)",
                        "{{deadline}}",
                    ),
                ),
                "near_due and overdue must be answered now (one month, Art. 12(3) GDPR)",
            ),
        ),
    ),
)


# building ------------------------------------------------------------------------------------


def _panel(spec: PanelSpec, panel_id: int) -> Any:
    builder: Any = stat.Panel() if spec.kind == "stat" else timeseries.Panel()
    builder = (
        builder.id(panel_id)
        .title(spec.title)
        .datasource(PROMETHEUS)
        .unit(spec.unit)
        .height(8 if spec.kind == "timeseries" else 4)
        .span(spec.width)
    )
    if spec.description:
        builder = builder.description(spec.description)
    for index, query in enumerate(spec.queries):
        target = (
            prometheus.Dataquery()
            .expr(query.expr)
            .legend_format(query.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(PROMETHEUS)
        )
        if spec.exemplars:
            target = target.exemplar(True)
        builder = builder.with_target(target)
    return builder


def _dashboard(
    uid: str, title: str, rows: Sequence[tuple[str, Sequence[PanelSpec]]], tags: Sequence[str]
) -> dict[str, Any]:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["switchboard", *tags])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .editable()
        .link(
            dashboard.DashboardLink("Switchboard")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["switchboard"])
            .as_dropdown(True)
        )
    )
    panel_id = 1
    for row_title, panels in rows:
        board = board.with_row(dashboard.Row(row_title).id(panel_id))
        panel_id += 1
        for spec in panels:
            board = board.with_panel(_panel(spec, panel_id))
            panel_id += 1
    built: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return built


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard by file name: `overview.json` and `<service>.json`."""
    boards = {
        "overview.json": _dashboard(
            "switchboard-overview", "Switchboard: overview", OVERVIEW, ["overview"]
        )
    }
    for spec in SERVICES:
        boards[f"{spec.name}.json"] = _dashboard(
            f"switchboard-{spec.name}",
            f"Switchboard: {spec.name}",
            _service_panels(spec),
            ["service", spec.name],
        )
    return boards


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a built dashboard's panels."""
    return [
        target["expr"]
        for panel in board.get("panels", [])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]

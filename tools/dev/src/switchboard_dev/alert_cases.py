"""One promtool unit test per alert of deploy/observability/prometheus/alerts.yml.

Each case gives input series and the labels the alert must fire with (or none: a healthy
input that must stay quiet); `switchboard generate` renders them into `alerts.test.yml`,
the expected annotations filled in from the rule's templates, and `promtool test rules`
runs it (tests/observability). Series use a one-minute interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AlertCase:
    """Input series, when to evaluate, and what must fire."""

    alert: str
    series: dict[str, str]
    eval_time: str
    fires: tuple[dict[str, str], ...] = ()
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


NOTES = {"service": "notes", "job": "notes", "instance": "notes:8002"}


def _s(metric: str, **labels: str) -> str:
    """A series selector: `metric{name="value", ...}`."""
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


CASES: tuple[AlertCase, ...] = (
    AlertCase(
        "SwitchboardServiceDown",
        {
            _s("up", job="notes", instance="notes:8002"): "1 1 0 0 0 0",
            _s("up", job="intake", instance="intake:8001"): "1x5",
        },
        "5m",
        ({"job": "notes", "instance": "notes:8002"},),
        "a target that stopped answering for 2 minutes; another that answers stays quiet",
    ),
    AlertCase(
        "SwitchboardNotReady",
        {
            _s("switchboard_ready", **NOTES, check="kafka"): "1 0 0 0 0 0",
            _s("switchboard_ready", **NOTES, check="mongodb"): "1x5",
        },
        "5m",
        ({"service": "notes", "job": "notes", "instance": "notes:8002", "check": "kafka"},),
    ),
    AlertCase(
        "SwitchboardConsumerLagGrowing",
        {
            _s(
                "switchboard_consumer_lag_messages",
                service="notes",
                topic="call.received",
                partition="0",
            ): "0+20x30",
            _s(
                "switchboard_consumer_lag_messages",
                service="notes",
                topic="call.received",
                partition="1",
            ): "0+5x30",
            _s(
                "switchboard_consumer_lag_messages",
                service="notify",
                topic="note.created",
                partition="0",
            ): "500x30",
        },
        "25m",
        ({"service": "notes", "topic": "call.received"},),
        "lag above 100 and growing for 10 minutes; a high but steady lag stays quiet",
    ),
    AlertCase(
        "SwitchboardConsumerStuck",
        {
            _s(
                "switchboard_consumer_last_event_time_seconds",
                service="notes",
                topic="call.received",
            ): "60x20",
            _s(
                "switchboard_consumer_lag_messages",
                service="notes",
                topic="call.received",
                partition="0",
            ): "5x20",
            _s(
                "switchboard_consumer_last_event_time_seconds",
                service="notify",
                topic="tenant.changed",
            ): "60x20",
            _s(
                "switchboard_consumer_lag_messages",
                service="notify",
                topic="tenant.changed",
                partition="0",
            ): "0x20",
        },
        "15m",
        ({"service": "notes", "topic": "call.received"},),
        "old newest event with events waiting; old but nothing waiting (an idle topic) is quiet",
    ),
    AlertCase(
        "SwitchboardOutboxEventOld",
        {
            _s(
                "switchboard_outbox_oldest_age_seconds",
                service="intake",
                job="intake",
                instance="intake:1",
            ): "0+30x20",
            _s(
                "switchboard_outbox_relay_active",
                service="intake",
                job="intake",
                instance="intake:1",
            ): "1x20",
            _s(
                "switchboard_outbox_oldest_age_seconds",
                service="notes",
                job="notes",
                instance="notes:1",
            ): "900x20",
            _s(
                "switchboard_outbox_relay_active", service="notes", job="notes", instance="notes:1"
            ): "0x20",
            _s(
                "switchboard_outbox_oldest_age_seconds",
                service="notes",
                job="notes",
                instance="notes:2",
            ): "0x20",
            _s(
                "switchboard_outbox_relay_active", service="notes", job="notes", instance="notes:2"
            ): "1x20",
        },
        "10m",
        ({"service": "intake"},),
        "the active relay's oldest event over a minute; a standby's stale value is ignored",
    ),
    AlertCase(
        "SwitchboardOutboxPublishFailing",
        {_s("switchboard_outbox_publish_failures_total", service="intake"): "0+5x20"},
        "15m",
        ({"service": "intake"},),
    ),
    AlertCase(
        "SwitchboardOutboxParked",
        {
            _s(
                "switchboard_outbox_parked_total", service="notes", topic="note.created"
            ): "0 0 0 1 1 1"
        },
        "5m",
        ({"service": "notes", "topic": "note.created"},),
        "the first parked entry counts (the counter is exported at 0 from the start)",
    ),
    AlertCase(
        "SwitchboardNotesBehindIntake",
        {_s("switchboard_intake_downstream_lag_messages", group="notes.call.received"): "3000x10"},
        "10m",
        ({"group": "notes.call.received"},),
    ),
    AlertCase(
        "SwitchboardDeadLetters",
        {
            _s(
                "switchboard_messages_dead_lettered_total",
                service="notes",
                topic="call.received",
                reason="schema_violation",
            ): "0 0 1 1",
            _s(
                "switchboard_messages_dead_lettered_total",
                service="notes",
                topic="call.received",
                reason="malformed",
            ): "0 0 0 0",
        },
        "3m",
        ({"service": "notes", "topic": "call.received", "reason": "schema_violation"},),
    ),
    AlertCase(
        "SwitchboardHttpErrors",
        {
            _s(
                "switchboard_http_requests_total",
                service="notes",
                method="GET",
                route="/v1/notes",
                status="200",
            ): "0+600x20",
            _s(
                "switchboard_http_requests_total",
                service="notes",
                method="GET",
                route="/v1/notes",
                status="500",
            ): "0+100x20",
            _s(
                "switchboard_http_requests_total",
                service="intake",
                method="POST",
                route="/v1/calls",
                status="201",
            ): "0+600x20",
        },
        "15m",
        ({"service": "notes"},),
        "one in seven answers a 500; a service with no 5xx series at all stays quiet",
    ),
    AlertCase(
        "SwitchboardHandlerRetrying",
        {_s("switchboard_messages_failed_total", service="notify", topic="note.created"): "0+1x30"},
        "20m",
        ({"service": "notify", "topic": "note.created"},),
    ),
    AlertCase(
        "SwitchboardCaptureToNoteSlow",
        {
            _s("switchboard_flow_latency_seconds_bucket", flow="capture_to_note", le="60"): "0x40",
            _s(
                "switchboard_flow_latency_seconds_bucket", flow="capture_to_note", le="300"
            ): "0+10x40",
            _s(
                "switchboard_flow_latency_seconds_bucket", flow="capture_to_note", le="+Inf"
            ): "0+10x40",
        },
        "25m",
        ({"flow": "capture_to_note"},),
    ),
    AlertCase(
        "SwitchboardDeliverySlow",
        {
            _s("switchboard_flow_latency_seconds_bucket", flow="note_to_crm", le="900"): "0x70",
            _s("switchboard_flow_latency_seconds_bucket", flow="note_to_crm", le="3600"): "0+10x70",
            _s("switchboard_flow_latency_seconds_bucket", flow="note_to_crm", le="+Inf"): "0+10x70",
            _s(
                "switchboard_flow_latency_seconds_bucket", flow="note_to_email", le="900"
            ): "0+10x70",
            _s(
                "switchboard_flow_latency_seconds_bucket", flow="note_to_email", le="+Inf"
            ): "0+10x70",
        },
        "60m",
        ({"flow": "note_to_crm"},),
        "CRM records take over 15 minutes; e-mails within it stay quiet",
    ),
    AlertCase(
        "SwitchboardTenantGuardTripped",
        {
            _s("switchboard_tenant_guard_dropped_total", **NOTES, collection="notes"): "0 0 1 1 1",
            _s("switchboard_tenant_guard_dropped_total", **NOTES, collection="other"): "0x4",
        },
        "4m",
        ({"service": "notes", "collection": "notes"},),
        "one dropped document fires for its collection; a collection at 0 stays quiet",
    ),
    AlertCase(
        "SwitchboardAuthRefusalsBurst",
        {
            _s(
                "switchboard_http_requests_total",
                service="notes",
                method="GET",
                route="/v1/notes",
                status="401",
            ): "0+120x20",
            _s(
                "switchboard_http_requests_total",
                service="intake",
                method="POST",
                route="/v1/calls",
                status="403",
            ): "0+30x20",
            _s(
                "switchboard_http_requests_total",
                service="notify",
                method="GET",
                route="/v1/deliveries",
                status="200",
            ): "0+600x20",
        },
        "15m",
        ({"service": "notes"},),
        "two refusals a second for 15 minutes fire; one every two seconds, or none, stays quiet",
    ),
    AlertCase(
        "SwitchboardReceiptChainBroken",
        {_s("switchboard_retention_receipt_chain_valid", job="retention"): "1 1 0 0"},
        "3m",
        ({},),
    ),
    AlertCase(
        "SwitchboardRetentionSweepIncomplete",
        {
            _s("switchboard_retention_sweeps", status="incomplete"): "0 0 0 1 1 1",
            _s("switchboard_retention_sweeps", status="completed"): "3 3 3 4 4 4",
        },
        "5m",
        ({},),
    ),
    AlertCase(
        "SwitchboardDsrNearDeadline",
        {
            _s("switchboard_retention_dsr_unfinished", deadline="near_due"): "0 1 1",
            _s("switchboard_retention_dsr_unfinished", deadline="ok"): "4 4 4",
        },
        "2m",
        ({},),
    ),
    AlertCase(
        "SwitchboardDsrOverdue",
        {
            _s("switchboard_retention_dsr_unfinished", deadline="overdue"): "0 1 1",
            _s("switchboard_retention_dsr_unfinished", deadline="near_due"): "2 2 2",
        },
        "2m",
        ({},),
    ),
)

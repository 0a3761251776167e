"""Prometheus metrics every service exposes at `GET /metrics`.

Labels name only the service, topic, route template, status and error kind: never an id, a
tenant or anything from a message, so series stay few and carry no personal data. The
metrics are process-wide; the `service` label keeps apart services sharing a process (tests).
"""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "switchboard_messages_consumed_total", "Events handled successfully", ["service", "topic"]
)
MESSAGES_FAILED = Counter(
    "switchboard_messages_failed_total",
    "Handler attempts that failed transiently and were retried",
    ["service", "topic"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "switchboard_messages_dead_lettered_total",
    "Messages sent to the dead-letter topic",
    ["service", "topic", "reason"],
)
HANDLER_DURATION = Histogram(
    "switchboard_handler_duration_seconds",
    "Time to handle one event, retries included",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "switchboard_consumer_lag_messages",
    "Messages of a partition not yet handled by this process (high watermark - next offset)",
    ["service", "topic", "partition"],
)
CONSUMER_EVENT_TIME = Gauge(
    "switchboard_consumer_last_event_time_seconds",
    "Event time (unix seconds) of the newest event handled per topic; now minus it is the age",
    ["service", "topic"],
)
CONSUMER_COMMITS = Counter(
    "switchboard_consumer_commits_total",
    "Offset commits sent (each covers every partition handled since the previous one)",
    ["service", "topic"],
)
OUTBOX_PENDING = Gauge(
    "switchboard_outbox_pending_events",
    "Events waiting in the outbox at the active relay's last pass (not capped by a batch)",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "switchboard_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in the outbox at the active relay's last pass",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "switchboard_outbox_published_total",
    "Events published by the outbox relay",
    ["service", "topic"],
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "switchboard_outbox_publish_failures_total",
    "Relay passes that failed to publish (the events stay and are tried again)",
    ["service"],
)
OUTBOX_PARKED = Counter(
    "switchboard_outbox_parked_total",
    "Outbox entries set aside after failing to publish repeatedly for a permanent reason",
    ["service", "topic"],
)
OUTBOX_RELAY_ACTIVE = Gauge(
    "switchboard_outbox_relay_active",
    "1 while this process holds the service's relay lease and publishes the outbox",
    ["service"],
)
TENANT_GUARD_DROPPED = Counter(
    "switchboard_tenant_guard_dropped_total",
    "Documents of another tenant dropped from a tenant-scoped read (must stay 0)",
    ["service", "collection"],
)
HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
)
HTTP_SHED = Counter(
    "switchboard_http_shed_total",
    "HTTP requests answered 503 unread: the process had its maximum in progress",
    ["service"],
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
READINESS = Gauge(
    "switchboard_ready",
    "1 when the named readiness check passed at the last /readyz, else 0",
    ["service", "check"],
)
DEAD_LETTER_DEPTH = Gauge(
    "switchboard_dead_letter_topic_messages",
    "Messages on a dead-letter topic this service writes to (end minus start offsets)",
    ["service", "topic"],
)
DB_COMMANDS = Counter(
    "switchboard_db_commands_total",
    "Database commands sent (each one round trip to the server), by command and collection",
    ["service", "command", "collection"],
)
FLOW_LATENCY = Histogram(
    "switchboard_flow_latency_seconds",
    "End-to-end latency of a flow, e.g. capture_to_note: call accepted to note stored",
    ["flow"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

DEAD_LETTER_REASONS = (
    "malformed",
    "unknown_type",
    "schema_violation",
    "unexpected_type",
    "handler_error",
)
"""Every `reason` label of `switchboard_messages_dead_lettered_total` (consumer.py)."""


def initialise_series(
    service: str,
    *,
    consumed: Iterable[str] = (),
    published: Iterable[str] = (),
    collections: Iterable[str] = (),
) -> None:
    """Export the service's counters at 0 before anything happens.

    A counter that appears only with its first increment hides that increment from
    `increase()` and `rate()`: the first dead letter of a topic would never fire an alert,
    and a dashboard would show "no data" rather than 0.
    """
    HTTP_SHED.labels(service=service)
    for collection in collections:
        TENANT_GUARD_DROPPED.labels(service=service, collection=collection)
    for topic in consumed:
        MESSAGES_CONSUMED.labels(service=service, topic=topic)
        MESSAGES_FAILED.labels(service=service, topic=topic)
        for reason in DEAD_LETTER_REASONS:
            MESSAGES_DEAD_LETTERED.labels(service=service, topic=topic, reason=reason)
    published = tuple(published)
    if published:
        OUTBOX_PUBLISH_FAILURES.labels(service=service)
    for topic in published:
        OUTBOX_PUBLISHED.labels(service=service, topic=topic)
        OUTBOX_PARKED.labels(service=service, topic=topic)

"""Prometheus metrics every service exposes at `GET /metrics`.

Labels name only the service, topic, route template, status and error kind: never an id, a
tenant or anything from a message, so series stay few and carry no personal data. The
metrics are process-wide; the `service` label keeps apart services sharing a process (tests).
"""

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
OUTBOX_BACKLOG = Gauge(
    "switchboard_outbox_backlog", "Events waiting in the outbox at the last relay pass", ["service"]
)
OUTBOX_PUBLISHED = Counter(
    "switchboard_outbox_published_total",
    "Events published by the outbox relay",
    ["service", "topic"],
)
HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

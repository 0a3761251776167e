"""Service settings for tests: the session's servers, a fresh database, fast polling."""

from __future__ import annotations

from typing import Any, TypeVar

from ..settings import ServiceSettings
from .pytest_plugin import ServerEndpoints

S = TypeVar("S", bound=ServiceSettings)

FAST = {
    "kafka_fetch_max_wait_ms": 20,  # Tansu answers a fetch only when the wait expires
    "kafka_background_fetch_max_wait_ms": 100,
    "kafka_session_timeout_ms": 6_000,  # a group join waits half of it; 6 s is Kafka's minimum
    "outbox_poll_interval_s": 0.05,
    "outbox_lease_s": 3.0,
    "kafka_commit_interval_ms": 20,
    "environment": "test",
    "tracing": "on",  # as in production, where an OTLP endpoint is set
}


PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "jwks_url": "https://login.example.com/jwks.json",
    "cursor_secret": "c" * 40,
    "kafka_security_protocol": "SSL",
    "mongodb_url": "mongodb://db.example/?tls=true",
}
"""Settings a production service starts with (keys, TLS everywhere): tests add their own."""


def service_settings(cls: type[S], servers: ServerEndpoints, database: str, **overrides: Any) -> S:
    """Settings of service class `cls` pointing at the test servers and database `database`."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": servers.kafka_bootstrap_servers,
        "mongodb_url": servers.mongodb_url,
        "mongodb_database": database,
        **FAST,
        **overrides,
    }
    return cls(**values)

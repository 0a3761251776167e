"""Settings of the intake service (prefix `INTAKE_`, plus the shared ones)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_platform.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    """Environment of the intake service."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", populate_by_name=True)

    port: int = Field(8001, ge=1, le=65535)
    mongodb_database: str = "intake"
    recording_notice_version: str = Field(
        "recording-notice-de-v1",
        min_length=1,
        max_length=100,
        description="Version of the recording notice agents read out before asking for consent",
    )
    idempotency_ttl_s: int = Field(
        86_400,
        ge=60,
        description="How long an Idempotency-Key answers its first call (then it may be reused)",
    )
    tenant_cache_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="How long a process remembers which tenant owns a forwarding number; "
        "another replica's tenant change takes effect within this time",
    )
    max_downstream_lag: int = Field(
        5_000,
        ge=0,
        description="Captures answer 503 with Retry-After while a consumer group of "
        "call.received is this many events behind (0: never)",
    )
    retention_participant: bool = Field(
        True,
        description="Answer retention.due and dsr.requested (issue 11), and forget a call "
        "whose note was deleted (note.deleted, R-NOTE-2). Keep it on: the retention service "
        "waits for intake's answers. Off only for tests that start and stop an app per test "
        "(each stop waits for the consumer groups' join)",
    )
    backpressure_groups: str = Field(
        "notes.call.received",
        description="Comma-separated consumer groups whose lag counts (notes' by default)",
    )

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

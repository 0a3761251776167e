"""Settings of the notes service (prefix `NOTES_`, plus the shared ones)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_platform.settings import ServiceSettings


class NotesSettings(ServiceSettings):
    """Environment of the notes service."""

    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore", populate_by_name=True)

    port: int = Field(8002, ge=1, le=65535)
    mongodb_database: str = "notes"

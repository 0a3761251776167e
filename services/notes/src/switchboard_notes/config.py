"""Settings of the notes service (prefix `NOTES_`, plus the shared ones)."""

from pydantic_settings import SettingsConfigDict

from switchboard_platform.settings import ServiceSettings


class NotesSettings(ServiceSettings):
    """Environment of the notes service."""

    model_config = SettingsConfigDict(env_prefix="NOTES_", extra="ignore", populate_by_name=True)

    port: int = 8002
    mongodb_database: str = "notes"

"""The dev runner's settings, from environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DevSettings(BaseSettings):
    """Which servers `switchboard dev` uses, and where embedded ones listen and keep data.

    With `KAFKA_BOOTSTRAP_SERVERS` or `MONGODB_URL` set, that server is used as given;
    without, an embedded one is started on `SWITCHBOARD_DEV_KAFKA_PORT` /
    `SWITCHBOARD_DEV_MONGO_PORT`, keeping MongoDB data under `SWITCHBOARD_DEV_DATA_DIR`.
    Likewise notify's mail and SMS sinks (`SWITCHBOARD_DEV_SMTP_PORT`, `_SMS_PORT`) unless
    `NOTIFY_SMTP_HOST` / `NOTIFY_SMS_URL` are set.
    """

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_DEV_", env_ignore_empty=True)

    kafka_bootstrap_servers: str | None = Field(None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    mongodb_url: str | None = Field(None, validation_alias="MONGODB_URL")
    kafka_port: int = Field(9092, ge=1, le=65535)
    mongo_port: int = Field(27017, ge=1, le=65535)
    smtp_port: int = Field(1025, ge=1, le=65535, description="notify's local mail sink")
    sms_port: int = Field(8026, ge=1, le=65535, description="notify's local SMS sink")
    otlp_port: int = Field(4318, ge=1, le=65535, description="the runner's OTLP/HTTP receiver")
    data_dir: Path | None = Field(None, description="default: .data of the workspace")


def workspace_root(start: Path) -> Path:
    """The uv workspace folder at or above `start`, or `start` when there is none."""
    for folder in (start, *start.parents):
        manifest = folder / "pyproject.toml"
        if manifest.is_file() and "[tool.uv.workspace]" in manifest.read_text():
            return folder
    return start

"""Configuration every service shares, read from environment variables (pydantic-settings)."""

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"  # noqa: S105 - refused in production


def _env(name: str) -> AliasChoices:
    """Read a field from one unprefixed variable, whatever the service's prefix."""
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """Settings shared by all services; each service subclasses it with its own `env_prefix`.

    Shared infrastructure variables (Kafka, MongoDB, JWT) are read without the prefix, so one
    environment serves the whole suite; per-service variables (`<SERVICE>_PORT`, …) use it.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Literal["dev", "test", "production"] = Field(
        "dev", validation_alias=_env("SWITCHBOARD_ENV")
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    mongodb_database: str = ""

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_fetch_max_wait_ms: int = Field(
        500, ge=1, le=30_000, validation_alias=_env("KAFKA_FETCH_MAX_WAIT_MS")
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1_000, le=300_000, validation_alias=_env("KAFKA_SESSION_TIMEOUT_MS")
    )
    kafka_rebalance_timeout_ms: int = Field(
        20_000, ge=1_000, le=600_000, validation_alias=_env("KAFKA_REBALANCE_TIMEOUT_MS")
    )
    kafka_group_instance_id: str | None = Field(
        None,
        description="Static group membership (KIP-345): a restarted process takes its old "
        "place at once; must be unique per replica, e.g. the pod name of a StatefulSet",
        validation_alias=_env("KAFKA_GROUP_INSTANCE_ID"),
    )
    kafka_consumer_group_prefix: str | None = Field(
        None,
        description="Consumer groups are `<prefix>.<topic>`; the prefix defaults to the service "
        "name. A new prefix reads every topic again from the start (a replay).",
        validation_alias=_env("KAFKA_CONSUMER_GROUP_PREFIX"),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=_env("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", validation_alias=_env("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(None, validation_alias=_env("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: SecretStr | None = Field(
        None, validation_alias=_env("KAFKA_SASL_PASSWORD")
    )
    kafka_ssl_cafile: str | None = Field(None, validation_alias=_env("KAFKA_SSL_CAFILE"))

    mongodb_url: str = Field("mongodb://127.0.0.1:27017", validation_alias=_env("MONGODB_URL"))

    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET), validation_alias=_env("SWITCHBOARD_JWT_SECRET")
    )
    jwks_url: str | None = Field(None, validation_alias=_env("SWITCHBOARD_JWKS_URL"))
    jwt_audience: str = Field("switchboard", validation_alias=_env("SWITCHBOARD_JWT_AUDIENCE"))

    outbox_poll_interval_s: float = Field(
        1.0, gt=0, validation_alias=_env("OUTBOX_POLL_INTERVAL_S")
    )
    max_request_bytes: int = Field(
        64 * 1024, ge=1024, validation_alias=_env("SWITCHBOARD_MAX_REQUEST_BYTES")
    )

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> "ServiceSettings":
        if self.environment == "production" and self.jwks_url is None:
            secret = self.jwt_secret.get_secret_value()
            if secret == DEV_JWT_SECRET or len(secret) < 32:
                raise ValueError(
                    "production needs SWITCHBOARD_JWKS_URL or a SWITCHBOARD_JWT_SECRET of "
                    "32+ characters that is not the dev default"
                )
        return self

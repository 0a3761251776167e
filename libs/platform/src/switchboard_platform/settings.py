"""Configuration every service shares, read from environment variables (pydantic-settings)."""

from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"  # noqa: S105 - refused in production
DEV_CURSOR_SECRET = "dev-cursor-secret-change-me-0123456789"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 32


def _env(name: str) -> AliasChoices:
    """Read a field from one unprefixed variable, whatever the service's prefix."""
    return AliasChoices(name)


ENCRYPTED_KAFKA = ("SSL", "SASL_SSL")


def mongodb_url_encrypted(url: str) -> bool:
    """Whether a MongoDB connection string asks for TLS (`tls=true`/`ssl=true`; SRV URLs
    have it unless they turn it off)."""
    parts = urlsplit(url)
    options = {k.lower(): v.lower() for k, v in parse_qsl(parts.query)}
    asked = options.get("tls", options.get("ssl"))
    if asked is not None:
        return asked == "true"
    # any other TLS option (tlsCAFile, tlsCertificateKeyFile, …) implies tls=true in PyMongo
    implied = any(k.startswith(("tls", "ssl")) for k in options)
    return implied or parts.scheme == "mongodb+srv"


def https_url(url: str) -> bool:
    """Whether `url` is an https URL."""
    return urlsplit(url).scheme.lower() == "https"


def plaintext_refusal(variable: str) -> str:
    """The error a production service gives for an unencrypted transport (R-SEC-1)."""
    return (
        f"production refuses an unencrypted {variable} (R-SEC-1: every transfer is "
        "encrypted); set SWITCHBOARD_ALLOW_PLAINTEXT=true only where the network itself "
        "encrypts (a service mesh with mutual TLS)"
    )


class ServiceSettings(BaseSettings):
    """Settings shared by all services; each service subclasses it with its own `env_prefix`.

    Shared infrastructure variables (Kafka, MongoDB, JWT) are read without the prefix, so one
    environment serves the whole suite; per-service variables (`<SERVICE>_PORT`, …) use it.
    """

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    environment: Literal["dev", "test", "production"] = Field(
        "production",
        description="Fail-closed: unless told `dev` or `test`, the service runs as production "
        "and refuses the dev secrets (the dev runner and the tests set it explicitly)",
        validation_alias=_env("SWITCHBOARD_ENV"),
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
    kafka_background_fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        le=30_000,
        description="Fetch wait of the topics no flow waits on (tenant and consent changes, "
        "retention and data-subject orders): on a broker that answers a fetch only when the "
        "wait expires (the embedded one), a short wait makes every idle consumer poll it "
        "dozens of times a second; Apache Kafka answers as soon as data arrives either way",
        validation_alias=_env("KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS"),
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
    state_dir: Path | None = Field(
        None,
        description="A directory private to this replica that outlives its restarts (the "
        "pod's emptyDir, the container's filesystem). Each consumer keeps its group member "
        "id there, so a process restarted after a crash first removes its dead predecessor "
        "from the group instead of waiting out that member's session (unneeded with "
        "KAFKA_GROUP_INSTANCE_ID: the broker fences then); the outbox relay keeps its lease "
        "owner id there, so the restarted process takes the relay lease back at once "
        "instead of waiting OUTBOX_LEASE_S. Never share it between replicas",
        validation_alias=_env("SWITCHBOARD_STATE_DIR"),
    )
    kafka_consumer_workers: int = Field(
        4,
        ge=1,
        le=64,
        description="Partitions handled concurrently per topic in one process (each partition "
        "keeps its order); the rest wait their turn",
        validation_alias=_env("KAFKA_CONSUMER_WORKERS"),
    )
    kafka_commit_interval_ms: int = Field(
        50,
        ge=0,
        le=10_000,
        description="Handled offsets are committed together at most this often (0: after "
        "each message); a crash redelivers at most this much, to idempotent handlers",
        validation_alias=_env("KAFKA_COMMIT_INTERVAL_MS"),
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
    gc_freeze: bool = Field(
        True,
        description="Once started, freeze the start-up heap (gc.freeze): full garbage "
        "collections then skip the process's long-lived objects and pause it for a few "
        "milliseconds instead of about 100",
        validation_alias=_env("SWITCHBOARD_GC_FREEZE"),
    )
    mongodb_command_metrics: bool = Field(
        False,
        description="Count every database command by command and collection "
        "(switchboard_db_commands_total): what a call costs the database in round trips. "
        "Off by default: PyMongo's command events cost about 0.07 ms of CPU per command",
        validation_alias=_env("MONGODB_COMMAND_METRICS"),
    )

    allow_plaintext: bool = Field(
        False,
        description="Production refuses unencrypted Kafka, MongoDB, SMTP and HTTP transports "
        "(R-SEC-1) unless this is set: only where the network encrypts (mesh mTLS)",
        validation_alias=_env("SWITCHBOARD_ALLOW_PLAINTEXT"),
    )

    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET), validation_alias=_env("SWITCHBOARD_JWT_SECRET")
    )
    jwks_url: str | None = Field(None, validation_alias=_env("SWITCHBOARD_JWKS_URL"))
    jwks_timeout_s: float = Field(
        5.0, gt=0, le=60, validation_alias=_env("SWITCHBOARD_JWKS_TIMEOUT_S")
    )
    jwt_audience: str = Field("switchboard", validation_alias=_env("SWITCHBOARD_JWT_AUDIENCE"))
    jwt_issuer: str | None = Field(
        None,
        description="When set, tokens must carry this `iss`",
        validation_alias=_env("SWITCHBOARD_JWT_ISSUER"),
    )
    jwt_max_lifetime_s: int = Field(
        24 * 3600,
        ge=60,
        description="Tokens valid for longer than this (exp - iat, or exp - now) are refused",
        validation_alias=_env("SWITCHBOARD_JWT_MAX_LIFETIME_S"),
    )
    cursor_secret: SecretStr = Field(
        SecretStr(DEV_CURSOR_SECRET),
        description="Key that signs page cursors; the same for every replica of a service",
        validation_alias=_env("SWITCHBOARD_CURSOR_SECRET"),
    )
    tracing: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Record spans: `auto` when OTEL_EXPORTER_OTLP_ENDPOINT is set",
        validation_alias=_env("SWITCHBOARD_TRACING"),
    )

    outbox_poll_interval_s: float = Field(
        0.1,
        gt=0,
        description="How often the active relay looks for events written by other replicas "
        "or before a crash; it also wakes at once on its own process's writes, and reads a "
        "collection it lately found other replicas' events in five times as often",
        validation_alias=_env("OUTBOX_POLL_INTERVAL_S"),
    )
    outbox_linger_ms: int = Field(
        0,
        ge=0,
        le=1000,
        description="How long the relay waits after its own process's write before reading, "
        "so the writes of those milliseconds go out in one batch (Kafka's linger.ms): fewer "
        "database reads and produce requests per event, at that much added latency",
        validation_alias=_env("OUTBOX_LINGER_MS"),
    )
    outbox_lease_s: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="One replica's relay publishes at a time; another takes over this long "
        "after the holder stopped renewing (a SIGKILLed replica)",
        validation_alias=_env("OUTBOX_LEASE_S"),
    )
    max_request_bytes: int = Field(
        64 * 1024, ge=1024, validation_alias=_env("SWITCHBOARD_MAX_REQUEST_BYTES")
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, le=1024 * 1024, validation_alias=_env("SWITCHBOARD_MAX_HEADER_BYTES")
    )
    http_max_in_flight: int = Field(
        128,
        ge=0,
        le=100_000,
        description="Requests one process serves at once; beyond, 503 with Retry-After before "
        "the request is read (probes excepted). 0: no limit",
        validation_alias=_env("SWITCHBOARD_HTTP_MAX_IN_FLIGHT"),
    )
    request_read_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A client must send a request's headers, and each part of its body, "
        "within this time; slower connections are closed (408)",
        validation_alias=_env("SWITCHBOARD_REQUEST_READ_TIMEOUT_S"),
    )

    @property
    def is_production(self) -> bool:
        """True unless the environment says `dev` or `test`."""
        return self.environment == "production"

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> "ServiceSettings":
        if not self.is_production:
            return self
        if self.jwks_url is None:
            secret = self.jwt_secret.get_secret_value()
            if secret == DEV_JWT_SECRET or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    "production needs SWITCHBOARD_JWKS_URL or a SWITCHBOARD_JWT_SECRET of "
                    f"{MIN_SECRET_LENGTH}+ characters that is not the dev default "
                    "(set SWITCHBOARD_ENV=dev to run with the dev defaults)"
                )
        cursor = self.cursor_secret.get_secret_value()
        if cursor == DEV_CURSOR_SECRET or len(cursor) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"production needs a SWITCHBOARD_CURSOR_SECRET of {MIN_SECRET_LENGTH}+ "
                "characters that is not the dev default"
            )
        return self

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _brokers_are_host_and_port(cls, value: str) -> str:
        brokers = [b.strip() for b in value.split(",")]
        for broker in brokers:
            host, _, port = broker.rpartition(":")
            if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be host:port, or several separated by commas")
        return ",".join(brokers)

    @model_validator(mode="after")
    def _jwt_secret_is_long_enough(self) -> "ServiceSettings":
        if len(self.jwt_secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"SWITCHBOARD_JWT_SECRET needs {MIN_SECRET_LENGTH}+ characters (in every "
                "environment: a short HMAC key can be guessed)"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> "ServiceSettings":
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL") and (
            self.kafka_sasl_username is None or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD"
            )
        cafile = self.kafka_ssl_cafile
        if cafile is not None and not Path(cafile).is_file():
            raise ValueError("KAFKA_SSL_CAFILE names no readable file")
        return self

    @property
    def refuses_plaintext(self) -> bool:
        """True in production unless SWITCHBOARD_ALLOW_PLAINTEXT says the network encrypts."""
        return self.is_production and not self.allow_plaintext

    @model_validator(mode="after")
    def _refuse_plaintext_in_production(self) -> "ServiceSettings":
        if not self.refuses_plaintext:
            return self
        if self.kafka_security_protocol not in ENCRYPTED_KAFKA:
            raise ValueError(plaintext_refusal("KAFKA_SECURITY_PROTOCOL (SSL or SASL_SSL)"))
        if not mongodb_url_encrypted(self.mongodb_url):
            raise ValueError(plaintext_refusal("MONGODB_URL (add tls=true)"))
        if self.jwks_url is not None and not https_url(self.jwks_url):
            raise ValueError(plaintext_refusal("SWITCHBOARD_JWKS_URL (https)"))
        return self

"""Settings of the crm-sync service (prefix `CRM_SYNC_`, plus the shared ones)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard_platform.settings import ServiceSettings, https_url, plaintext_refusal

from .credentials import InvalidKey, parse_keys


class CrmSyncSettings(ServiceSettings):
    """Environment of the crm-sync service."""

    model_config = SettingsConfigDict(
        env_prefix="CRM_SYNC_",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # a refused setting must not print the key it holds
    )

    port: int = Field(8005, ge=1, le=65535)
    mongodb_database: str = "crmsync"

    hubspot_url: str = Field(
        "https://api.hubapi.com", description="Base URL of the HubSpot CRM API"
    )
    salesforce_url: str | None = Field(
        None,
        description="When set, every Salesforce call goes to this base URL instead of the "
        "tenant's instance URL (a sandbox proxy, tests)",
    )
    salesforce_api_version: str = Field(
        "v62.0", pattern=r"^v[0-9]{2,3}\.[0-9]$", description="Salesforce REST API version"
    )
    pipedrive_url: str = Field(
        "https://api.pipedrive.com", description="Base URL of the Pipedrive API"
    )
    credentials_key: SecretStr | None = Field(
        None,
        description="base64 of 32 random bytes; comma-separated, newest first, to rotate",
    )
    allow_private_urls: bool = Field(
        False,
        description="Allow http and private, loopback and link-local webhook URLs "
        "(dev and tests only; refused in production)",
    )
    http_timeout_s: float = Field(10.0, gt=0, le=120)
    transfer_lease_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="A transfer claimed by a replica that died is taken up again after this; "
        "an attempt (up to four CRM calls) is cut off at 80 % of it",
    )
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    max_in_flight: int = Field(32, ge=1, le=1000)
    connector_concurrency: int = Field(4, ge=1, le=64)
    max_attempts: int = Field(10, ge=1, le=100)
    retry_base_s: float = Field(5.0, gt=0, le=3600)
    retry_max_s: float = Field(3600.0, gt=0, le=86_400)
    breaker_threshold: int = Field(5, ge=1, le=1000)
    breaker_open_s: float = Field(60.0, gt=0, le=86_400)
    unknown_tenant_grace_s: float = Field(
        600.0,
        ge=0,
        description="How long a transfer waits for its tenant's profile (tenant.changed) "
        "before it is refused",
    )

    @model_validator(mode="after")
    def _refuse_unsafe_settings_in_production(self) -> Self:
        if self.credentials_key is not None:
            try:
                parse_keys(self.credentials_key.get_secret_value())
            except InvalidKey as exc:
                raise ValueError(f"CRM_SYNC_CREDENTIALS_KEY: {exc}") from None
        if self.transfer_lease_s < 2 * self.http_timeout_s:
            raise ValueError(
                "CRM_SYNC_TRANSFER_LEASE_S must be at least twice CRM_SYNC_HTTP_TIMEOUT_S"
            )
        if not self.is_production:
            return self
        if self.allow_private_urls:
            raise ValueError(
                "production refuses CRM_SYNC_ALLOW_PRIVATE_URLS=true (dev and tests only)"
            )
        if self.credentials_key is None:
            raise ValueError("production needs CRM_SYNC_CREDENTIALS_KEY (base64 of 32 bytes)")
        if self.refuses_plaintext:  # R-SEC-1: the CRMs are reached over TLS
            for variable, url in (
                ("CRM_SYNC_HUBSPOT_URL", self.hubspot_url),
                ("CRM_SYNC_SALESFORCE_URL", self.salesforce_url),
                ("CRM_SYNC_PIPEDRIVE_URL", self.pipedrive_url),
            ):
                if url is not None and not https_url(url):
                    raise ValueError(plaintext_refusal(f"{variable} (https)"))
        return self

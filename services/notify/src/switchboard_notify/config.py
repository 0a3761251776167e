"""Settings of the notify service (prefix `NOTIFY_`, plus the shared ones)."""

from __future__ import annotations

import socket
import string
from email.utils import parseaddr
from enum import StrEnum

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard_contracts.delivery import Region, Safeguard, outside_eu
from switchboard_contracts.tenants import Channel
from switchboard_platform.settings import ServiceSettings, https_url, plaintext_refusal


class SmtpTls(StrEnum):
    """How the SMTP connection is encrypted.

    `starttls`: STARTTLS is required and the certificate verified; `tls`: implicit TLS
    (port 465), verified; `none`: nothing is required, but STARTTLS is still used whenever
    the server offers it (opportunistic, without certificate verification, RFC 7435).
    """

    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class SmsProviderName(StrEnum):
    """The SMS gateways notify speaks."""

    TWILIO = "twilio"
    SIPGATE = "sipgate"


DEFAULT_SMS_URLS = {
    SmsProviderName.TWILIO: "https://api.twilio.com",
    SmsProviderName.SIPGATE: "https://api.sipgate.com",
}
DEFAULT_SMS_REGIONS = {
    SmsProviderName.TWILIO: "US",  # Twilio Inc. processes in the US
    SmsProviderName.SIPGATE: "DE",
}
"""Where each gateway processes messages unless NOTIFY_SMS_REGION says otherwise (R-SEC-5)."""
_LINK_FIELDS = frozenset({"note_id", "tenant_id"})


class NotifySettings(ServiceSettings):
    """Environment of the notify service."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore", populate_by_name=True)

    port: int = Field(8003, ge=1, le=65535)
    mongodb_database: str = "notify"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpTls = SmtpTls.STARTTLS
    smtp_ca_file: str | None = Field(None, description="CA bundle to verify the SMTP server")
    smtp_timeout_s: float = Field(15.0, gt=0, le=120)
    smtp_connections: int = Field(4, ge=1, le=32, description="SMTP connections kept open")
    mail_from: str = "Switchboard <notify@localhost>"
    message_id_domain: str | None = Field(
        None, description="Right-hand side of Message-IDs; default: the domain of MAIL_FROM"
    )

    smtp_region: Region = Field("EU", description="Where the mail server processes mail (R-SEC-5)")
    smtp_safeguard: Safeguard | None = Field(
        None, description="The transfer safeguard if the mail server is outside the EU/EEA"
    )

    sms_provider: SmsProviderName = SmsProviderName.TWILIO
    sms_url: str | None = Field(None, description="Gateway base URL; default: the vendor's")
    sms_username: str | None = None
    sms_password: SecretStr | None = None
    sms_from: str | None = Field(None, description="Twilio number or MG… sid; sipgate smsId")
    sms_timeout_s: float = Field(10.0, gt=0, le=120)
    sms_region: Region | None = Field(
        None, description="Where the gateway processes messages (R-SEC-5); default: the vendor's"
    )
    sms_safeguard: Safeguard | None = Field(
        None, description="The transfer safeguard if the gateway is outside the EU/EEA"
    )

    note_link_template: str = "http://127.0.0.1:8002/v1/notes/{note_id}"
    onboarding_notice_version: str = Field(
        "onboarding-contract-de-v1",
        min_length=1,
        max_length=100,
        description="Version of the onboarding contract's notice on notifications",
    )

    tenant_cache_s: float = Field(
        1.0, ge=0, le=60, description="How long a tenant profile read is reused (0: never)"
    )
    max_attempts: int = Field(8, ge=1, le=50)
    retry_base_s: float = Field(5.0, gt=0, le=3600)
    retry_max_s: float = Field(900.0, gt=0, le=86400)
    retry_after_max_s: float = Field(3600.0, gt=0, le=86400)
    sender_concurrency: int = Field(8, ge=1, le=256)
    sender_poll_s: float = Field(1.0, gt=0, le=60)
    send_lease_s: float = Field(
        60.0, gt=0, le=3600, description="A claimed delivery is taken over after this long"
    )
    sender_instance: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="This replica's name (default: KAFKA_GROUP_INSTANCE_ID, else the host "
        "name); a restarted replica takes back its own unfinished claims at once",
    )

    @field_validator("note_link_template")
    @classmethod
    def _link_names_known_fields(cls, template: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        if "note_id" not in names or not names <= _LINK_FIELDS:
            raise ValueError("must contain {note_id} and may contain only {note_id}, {tenant_id}")
        return template

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError("must be an e-mail address, optionally with a display name")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> NotifySettings:
        if self.send_lease_s < 2 * max(self.smtp_timeout_s, self.sms_timeout_s):
            raise ValueError("NOTIFY_SEND_LEASE_S must be at least twice the send timeouts")
        return self

    @model_validator(mode="after")
    def _providers_outside_the_eu_have_a_safeguard(self) -> NotifySettings:
        """R-SEC-5: a processor outside the EU/EEA only under a documented safeguard."""
        if not self.is_production:
            return self
        for variable, (region, safeguard) in (
            ("NOTIFY_SMTP", self.provider_region(Channel.EMAIL)),
            ("NOTIFY_SMS", self.provider_region(Channel.SMS)),
        ):
            if outside_eu(region) and safeguard is None:
                raise ValueError(
                    f"{variable}_REGION={region} lies outside the EU/EEA: production needs "
                    f"{variable}_SAFEGUARD (scc, adequacy or bcr) to send there (R-SEC-5)"
                )
        return self

    def provider_region(self, channel: Channel) -> tuple[str, Safeguard | None]:
        """Where a channel's provider processes the data, and under which safeguard."""
        if channel is Channel.EMAIL:
            return self.smtp_region, self.smtp_safeguard
        return self.sms_region or DEFAULT_SMS_REGIONS[self.sms_provider], self.sms_safeguard

    @model_validator(mode="after")
    def _encrypted_in_production(self) -> NotifySettings:
        """R-SEC-1: the mail, the SMS and the link in them travel encrypted."""
        if not self.refuses_plaintext:
            return self
        if self.smtp_tls is SmtpTls.NONE:
            raise ValueError(plaintext_refusal("NOTIFY_SMTP_TLS=none (starttls or tls)"))
        if not https_url(self.sms_base_url):
            raise ValueError(plaintext_refusal("NOTIFY_SMS_URL (https)"))
        if not https_url(self.note_link_template):
            raise ValueError(plaintext_refusal("NOTIFY_NOTE_LINK_TEMPLATE (https)"))
        return self

    @property
    def instance(self) -> str:
        """The name under which this replica claims deliveries."""
        return self.sender_instance or self.kafka_group_instance_id or socket.gethostname()

    @property
    def envelope_from(self) -> str:
        """The bare sender address (SMTP MAIL FROM)."""
        return parseaddr(self.mail_from)[1]

    @property
    def id_domain(self) -> str:
        """The domain of our Message-IDs."""
        return self.message_id_domain or self.envelope_from.rpartition("@")[2]

    @property
    def sms_base_url(self) -> str:
        """The SMS gateway's base URL."""
        return (self.sms_url or DEFAULT_SMS_URLS[self.sms_provider]).rstrip("/")

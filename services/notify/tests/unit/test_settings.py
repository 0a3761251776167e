"""notify's settings in production: mail, SMS and the note link travel encrypted (R-SEC-1)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from switchboard_contracts.tenants import Channel
from switchboard_notify.config import NotifySettings
from switchboard_platform.testing.settings import PRODUCTION as BASE

PRODUCTION: dict[str, Any] = {
    **BASE,
    "note_link_template": "https://portal.example.de/notes/{note_id}",
    "sms_provider": "sipgate",
}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"smtp_tls": "none"}, "NOTIFY_SMTP_TLS"),
        ({"sms_url": "http://gateway.example"}, "NOTIFY_SMS_URL"),
        ({"note_link_template": "http://portal.example.de/{note_id}"}, "NOTIFY_NOTE_LINK"),
    ],
)
def test_r_sec_1_production_refuses_unencrypted_mail_sms_and_links(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        NotifySettings(**{**PRODUCTION, **values})
    assert (
        NotifySettings(**{**PRODUCTION, **values}, allow_plaintext=True).refuses_plaintext is False
    )
    assert NotifySettings(**{**PRODUCTION, **values, "environment": "dev"})


def test_production_accepts_the_encrypted_defaults() -> None:
    settings = NotifySettings(**PRODUCTION)
    assert (settings.smtp_tls, settings.sms_base_url) == ("starttls", "https://api.sipgate.com")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"sms_provider": "twilio"}, "NOTIFY_SMS_REGION=US"),
        ({"sms_region": "CH"}, "NOTIFY_SMS_REGION=CH"),
        ({"smtp_region": "US"}, "NOTIFY_SMTP_REGION=US"),
    ],
)
def test_r_sec_5_a_provider_outside_the_eu_needs_a_documented_safeguard(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        NotifySettings(**{**PRODUCTION, **values})
    safeguards = {"sms_safeguard": "scc", "smtp_safeguard": "adequacy"}
    settings = NotifySettings(**{**PRODUCTION, **values, **safeguards})
    assert settings.provider_region(Channel.SMS)[1] == "scc"
    assert NotifySettings(**{**PRODUCTION, **values, "environment": "dev"})


def test_r_sec_5_each_channel_names_where_its_provider_processes() -> None:
    settings = NotifySettings(**{**PRODUCTION, "sms_provider": "twilio", "sms_safeguard": "scc"})
    assert settings.provider_region(Channel.EMAIL) == ("EU", None)
    assert settings.provider_region(Channel.SMS) == ("US", "scc")
    assert NotifySettings(**PRODUCTION).provider_region(Channel.SMS) == ("DE", None)

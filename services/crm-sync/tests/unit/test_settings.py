"""crm-sync's settings: production refuses private URLs and a missing or malformed key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.credentials import new_key
from switchboard_platform.testing.settings import PRODUCTION as BASE

PRODUCTION: dict[str, Any] = {
    **BASE,
}


def test_production_refuses_private_urls() -> None:
    with pytest.raises(ValidationError, match="CRM_SYNC_ALLOW_PRIVATE_URLS"):
        CrmSyncSettings(**PRODUCTION, credentials_key=new_key(), allow_private_urls=True)


def test_production_needs_a_credentials_key() -> None:
    with pytest.raises(ValidationError, match="CRM_SYNC_CREDENTIALS_KEY"):
        CrmSyncSettings(**PRODUCTION)
    assert CrmSyncSettings(**PRODUCTION, credentials_key=new_key()).port == 8005


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        CrmSyncSettings(environment="test", credentials_key="c2VjcmV0LWtleQ==")
    assert "c2VjcmV0LWtleQ" not in str(refused.value)
    assert "not 32 bytes" in str(refused.value)


def test_dev_and_test_may_allow_private_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "test")
    monkeypatch.setenv("CRM_SYNC_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("CRM_SYNC_HUBSPOT_URL", "http://127.0.0.1:9999")
    settings = CrmSyncSettings()
    assert settings.allow_private_urls
    assert settings.hubspot_url == "http://127.0.0.1:9999"
    assert (settings.mongodb_database, settings.pipedrive_url) == (
        "crmsync",
        "https://api.pipedrive.com",
    )


def test_the_lease_must_outlast_a_request() -> None:
    with pytest.raises(ValidationError, match="LEASE"):
        CrmSyncSettings(environment="test", http_timeout_s=10, transfer_lease_s=5)


def test_r_sec_1_production_refuses_a_crm_base_url_without_tls() -> None:
    with pytest.raises(ValidationError, match="CRM_SYNC_HUBSPOT_URL"):
        CrmSyncSettings(
            **PRODUCTION, credentials_key=new_key(), hubspot_url="http://api.hubapi.com"
        )

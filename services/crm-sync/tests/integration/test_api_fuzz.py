"""Schemathesis over the crm-sync API, as a real process, with every role (issue 8, "Proof").

Fuzzing must not make crm-sync look up or call hosts elsewhere: the vendors' base URLs
point at a closed port here, and every URL a generated body carries is replaced by one of
this machine (refused by the SSRF guard without a DNS lookup). URL rules themselves are
tested in test_ssrf.py with a resolver of the test's own.
"""

import base64
from typing import Any

from switchboard_crm_sync.config import CrmSyncSettings
from switchboard_crm_sync.main import create_app
from switchboard_platform.testing.api_fuzz import fuzz_module

KEY = base64.b64encode(bytes(32)).decode()  # a test key: only fuzzed, never real, credentials
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens


def _local_urls(case: Any) -> None:
    credentials = case.body.get("credentials") if isinstance(case.body, dict) else None
    if isinstance(credentials, dict):
        for name in list(credentials):
            if "url" in name.lower():
                credentials[name] = "https://127.0.0.1:9/hook"


service_process, test_no_5xx_and_every_answer_documented, test_refused_roles_too = fuzz_module(
    "crm-sync",
    "switchboard_crm_sync",
    create_app(CrmSyncSettings(environment="test", credentials_key=KEY)),
    extra_env={
        "CRM_SYNC_CREDENTIALS_KEY": KEY,
        "CRM_SYNC_HUBSPOT_URL": CLOSED,
        "CRM_SYNC_SALESFORCE_URL": CLOSED,
        "CRM_SYNC_PIPEDRIVE_URL": CLOSED,
    },
    prepare=_local_urls,
)

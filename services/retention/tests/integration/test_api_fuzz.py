"""Schemathesis over the retention API, as a real process, with every role (issue 8, "Proof").

The API is for operators only: clients, agents and anonymous callers are refused (403/401)
whatever they send. The process publishes on the session's shared topics, so nothing it
orders may reach another test's data: scheduled sweeps are off, and every generated sweep
and data-subject request is limited to the fuzz tenant, whose data no test keeps. The fuzz
tenant is announced on `tenant.changed` first (active: it is never offboarded), so those
sweeps and requests reach the use cases instead of stopping at the unknown-tenant 422.
"""

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from switchboard_platform.testing.api_fuzz import fuzz_module
from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_retention.config import RetentionSettings
from switchboard_retention.main import create_app

from ..support import announce

TENANT = "fuzz-tenant"
LIMITED = {("POST", "/v1/sweeps"), ("POST", "/v1/dsr")}


def _only_the_fuzz_tenant(case: Any) -> None:
    """Sweeps and requests never reach beyond the fuzz tenant: an order for all tenants would
    erase other modules' data in every service that reads the topic later. A sweep without
    a body (or with `null`) is one for all tenants, so it gets one that names the tenant."""
    if (case.method.upper(), case.operation.path) not in LIMITED:
        return
    if not isinstance(case.body, dict) and case.operation.path == "/v1/sweeps":
        case.body = {}
        case.media_type = "application/json"
    if isinstance(case.body, dict):
        case.body["tenant_id"] = TENANT


service_process, test_no_5xx_and_every_answer_documented, test_refused_roles_too = fuzz_module(
    "retention",
    "switchboard_retention",
    create_app(RetentionSettings(environment="test")),
    tenant=TENANT,
    extra_env={"RETENTION_SWEEP_INTERVAL_S": "0"},
    prepare=_only_the_fuzz_tenant,
)


@pytest.fixture(scope="module", autouse=True)
async def fuzz_tenant_announced(
    service_process: ServiceProcess,
    servers: ServerEndpoints,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    """The fuzz tenant is one the fuzzed process learnt from `tenant.changed`."""
    await announce(servers, mongo["retention_fuzz"], TENANT)

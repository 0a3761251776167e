"""HTTP routes of intake: parse, authorise, call the use case, shape the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, status

from switchboard_platform.auth import AgentUser, OperatorUser, TenantUser, ensure_tenant_access
from switchboard_platform.http import ResourceId, api_router

from .backpressure import DownstreamLag
from .schemas import (
    CallAccepted,
    CallCreate,
    TenantCreate,
    TenantCreated,
    TenantPublic,
    TenantUpdate,
)
from .service import IntakeService


async def _admitted(request: Request, _: AgentUser) -> None:
    """Refuse a capture (503, Retry-After) while the consumers of calls are far behind.

    After authentication: a caller without a valid agent token learns nothing of the load.
    """
    backpressure: DownstreamLag = request.app.state.backpressure
    backpressure.check()


async def _service(request: Request) -> IntakeService:
    service: IntakeService = request.app.state.intake_service
    return service


Service = Annotated[IntakeService, Depends(_service)]
RetryKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        description="Send the same key when retrying a capture: the first call is answered "
        "again (for a day); the same key with another request is refused (422)",
    ),
]

tenants = api_router("/v1/tenants", tags=["tenants"])
calls = api_router("/v1/calls", tags=["calls"])


@tenants.post(
    "", status_code=status.HTTP_201_CREATED, responses={409: {"description": "A number is taken"}}
)
async def create_tenant(body: TenantCreate, _: OperatorUser, service: Service) -> TenantCreated:
    """Onboard a tenant (operators); publishes `tenant.changed`. 409 if a number is taken."""
    tenant = await service.create_tenant(body.to_profile())
    return TenantCreated(id=tenant.tenant_id)


@tenants.get("/{tenant_id}")
async def read_tenant(
    tenant_id: ResourceId, principal: TenantUser, service: Service
) -> TenantPublic:
    """A tenant's profile: operators any, a client only its own (another's answers 404)."""
    ensure_tenant_access(principal, tenant_id, "tenant")
    return TenantPublic.of(await service.get_tenant(tenant_id))


@tenants.patch("/{tenant_id}", responses={409: {"description": "A number is taken"}})
async def change_tenant(
    tenant_id: ResourceId, body: TenantUpdate, _: OperatorUser, service: Service
) -> TenantPublic:
    """Change some of a tenant's fields (operators); publishes `tenant.changed`."""
    return TenantPublic.of(await service.change_tenant(tenant_id, body.changes()))


@calls.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {
            "description": "The Idempotency-Key is in use by a concurrent retry, or names a "
            "call whose note was deleted since (not recorded again)"
        }
    },
    dependencies=[Depends(_admitted)],
)
async def capture_call(
    body: CallCreate, agent: AgentUser, service: Service, idempotency_key: RetryKey = None
) -> CallAccepted:
    """Capture a call (agents); publishes `call.received`. The agent is the token's subject."""
    call = await service.capture_call(
        body.details(),
        tenant_id=body.tenant_id,
        dialed_number=body.dialed_number,
        agent_id=agent.sub,
        idempotency_key=idempotency_key,
    )
    return CallAccepted(id=call.call_id, tenant_id=call.tenant_id, received_at=call.received_at)

"""HTTP routes of crm-sync: parse, authorise, call the use case, shape the reply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response, status
from pydantic import BaseModel

from switchboard_platform.auth import OperatorUser, TenantUser, tenant_of
from switchboard_platform.cursors import CursorCodec
from switchboard_platform.errors import Unprocessable
from switchboard_platform.http import ResourceId, api_router

from .domain import Kind, TransferStatus
from .schemas import (
    ConnectorPublic,
    ConnectorPut,
    ConnectorSaved,
    ConnectorTest,
    TransferPage,
    TransferPublic,
)
from .service import CrmSyncService

router = api_router("/v1", tags=["crm-sync"])

TENANT_FIELD = "query.tenant_id"
TenantId = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="Operators name the tenant; clients omit it"),
]


async def get_service(request: Request) -> CrmSyncService:
    """The service object created at start-up."""
    service: CrmSyncService = request.app.state.crm_service
    return service


async def get_cursors(request: Request) -> CursorCodec:
    """The signer of the transfer log's page cursors."""
    cursors: CursorCodec = request.app.state.transfer_cursors
    return cursors


Service = Annotated[CrmSyncService, Depends(get_service)]
Cursors = Annotated[CursorCodec, Depends(get_cursors)]


class RetryAccepted(BaseModel):
    """The transfer is due again."""

    id: str
    status: TransferStatus


@router.put(
    "/connectors/{kind}",
    response_model=ConnectorSaved,
    summary="Create or change the tenant's connector of one kind",
)
async def put_connector(
    kind: Kind,
    body: ConnectorPut,
    principal: TenantUser,
    service: Service,
    tenant_id: TenantId = None,
) -> ConnectorSaved:
    """Credentials are written only; a generated webhook secret is answered this once.

    An operator's `tenant_id` must name a tenant crm-sync learnt from `tenant.changed`
    (else 422).
    """
    tenant = tenant_of(principal, tenant_id, field=TENANT_FIELD)
    doc, secret = await service.configure(
        tenant, kind, body, actor=principal.sub, named_by_operator=principal.is_operator
    )
    public = ConnectorPublic.from_document(doc)
    return ConnectorSaved(**public.model_dump(), secret=secret)


@router.get("/connectors", response_model=list[ConnectorPublic], summary="The tenant's connectors")
async def list_connectors(
    principal: TenantUser, service: Service, tenant_id: TenantId = None
) -> list[ConnectorPublic]:
    """Each connector's configuration, status and last success or failure; never a secret."""
    tenant = tenant_of(principal, tenant_id, field=TENANT_FIELD)
    return [ConnectorPublic.from_document(d) for d in await service.connectors(tenant)]


@router.delete(
    "/connectors/{kind}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a connector"
)
async def delete_connector(
    kind: Kind, principal: TenantUser, service: Service, tenant_id: TenantId = None
) -> Response:
    """Remove the connector; its credentials are erased and its open transfers cancelled."""
    await service.remove(tenant_of(principal, tenant_id, field=TENANT_FIELD), kind)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/connectors/{kind}/test",
    response_model=ConnectorTest,
    summary="Make a harmless call to the CRM with the stored credentials",
)
async def check_connector(
    kind: Kind, principal: TenantUser, service: Service, tenant_id: TenantId = None
) -> ConnectorTest:
    """What the CRM answered: `ok`, its status code, and the kind of failure if any."""
    return await service.test(tenant_of(principal, tenant_id, field=TENANT_FIELD), kind)


@router.get("/transfers", response_model=TransferPage, summary="The transfer log, newest first")
async def list_transfers(
    principal: TenantUser,
    service: Service,
    cursors: Cursors,
    tenant_id: TenantId = None,
    note_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    transfer_status: Annotated[TransferStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TransferPage:
    """Every transfer with its attempts (R-API-2); `next_cursor` is signed for the tenant."""
    tenant = tenant_of(principal, tenant_id, field=TENANT_FIELD)
    docs, position = await service.transfers_page(
        tenant,
        note_id=note_id,
        status=transfer_status,
        limit=limit,
        after=_position(cursors.decode(tenant, cursor)),
    )
    return TransferPage(
        items=[TransferPublic.from_document(d) for d in docs],
        next_cursor=cursors.encode(tenant, list(position) if position is not None else None),
    )


def _position(decoded: list[Any] | None) -> tuple[float, str] | None:
    """A `[creation epoch seconds, id]` cursor position; 422 on anything else."""
    if decoded is None:
        return None
    match decoded:
        case [int() | float() as moment, str() as key] if not isinstance(moment, bool):
            return float(moment), key
    raise Unprocessable("not a cursor of this listing", field="query.cursor")


@router.post(
    "/transfers/{transfer_id}/retry",
    response_model=RetryAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Try a failed or refused transfer again (operators)",
    responses={409: {"description": "The transfer is not failed or refused, or cannot run"}},
)
async def retry_transfer(
    transfer_id: ResourceId,
    principal: OperatorUser,
    service: Service,
    tenant_id: TenantId = None,
) -> RetryAccepted:
    """The transfer becomes due at once; the transfer loop takes it up."""
    tenant = tenant_of(principal, tenant_id, field=TENANT_FIELD)
    await service.retry(tenant, transfer_id, actor=principal.sub)
    return RetryAccepted(id=transfer_id, status=TransferStatus.PENDING)

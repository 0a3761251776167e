"""HTTP routes of the notify service: parse, authorise, call the use case, shape the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, status

from switchboard_platform.auth import ClientUser, OperatorUser, Principal, TenantUser, tenant_of
from switchboard_platform.cursors import CursorCodec, time_and_id, time_and_id_position
from switchboard_platform.errors import Unprocessable
from switchboard_platform.http import ResourceId, api_router
from switchboard_platform.inputs import InvalidInput

from .consents import Declaration, subject_of
from .domain import DeliveryStatus
from .schemas import ConsentCreate, ConsentPublic, DeliveryPage, DeliveryPublic, RecipientPublic
from .service import DeliveryFilter, NotifyService

router = api_router("/v1", tags=["notify"])
TenantQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="Operators name the tenant; clients need not"),
]


async def get_service(request: Request) -> NotifyService:
    """The service object created at start-up."""
    service: NotifyService = request.app.state.notify_service
    return service


async def get_cursors(request: Request) -> CursorCodec:
    """The signer of the deliveries listing's page cursors."""
    cursors: CursorCodec = request.app.state.delivery_cursors
    return cursors


Service = Annotated[NotifyService, Depends(get_service)]
Cursors = Annotated[CursorCodec, Depends(get_cursors)]


def _recorder(principal: Principal, tenant_id: str) -> str:
    who = (
        f"operator:{principal.sub}"
        if principal.is_operator
        else f"client:{tenant_id}/{principal.sub}"
    )
    return who[:100]


@router.get(
    "/recipients",
    response_model=list[RecipientPublic],
    summary="The tenant's recipients with their current consent",
)
async def list_recipients(principal: ClientUser, service: Service) -> list[RecipientPublic]:
    """Where the tenant's call notes go, and whether each recipient's consent is granted."""
    tenant = tenant_of(principal, None)
    return [RecipientPublic.of(s) for s in await service.recipients(tenant)]


@router.post(
    "/consents",
    response_model=ConsentPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Record a consent or its withdrawal",
)
async def declare_consent(
    body: ConsentCreate, principal: TenantUser, service: Service
) -> ConsentPublic:
    """Append a record to the registry and publish `consent.changed` (R-CON-2, R-CON-3).

    A withdrawal acts from its `occurred_at`: deliveries not yet sent are suppressed. An
    operator's `tenant_id` must name a tenant notify learnt from `tenant.changed` (else 422).
    """
    tenant = tenant_of(principal, body.tenant_id, field="body.tenant_id")
    declaration = Declaration(
        tenant_id=tenant,
        subject=subject_of(body.subject),
        purpose=body.purpose,
        channel=body.channel,
        status=body.status,
        method=body.method,
        text_version=body.text_version,
        recorded_by=_recorder(principal, tenant),
        occurred_at=body.occurred_at,
    )
    recorded = await service.declare_consent(declaration, named_by_operator=principal.is_operator)
    return ConsentPublic.of(recorded)


@router.get(
    "/consents",
    response_model=list[ConsentPublic],
    summary="The consent history of one subject, oldest first",
)
async def consent_history(
    principal: TenantUser,
    service: Service,
    subject: Annotated[str, Query(min_length=1, max_length=254)],
    tenant_id: TenantQuery = None,
) -> list[ConsentPublic]:
    """Every record of the subject in the tenant's context: proof under Art. 7(1) (R-CON-3)."""
    tenant = tenant_of(principal, tenant_id, field="query.tenant_id")
    try:
        normalised = subject_of(subject).value
    except InvalidInput as exc:
        raise Unprocessable(exc.message, field="query.subject") from None
    return [ConsentPublic.of(r) for r in await service.consent_history(tenant, normalised)]


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    summary="The delivery ledger, newest first (R-API-2)",
)
async def list_deliveries(
    principal: TenantUser,
    service: Service,
    cursors: Cursors,
    note_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    tenant_id: TenantQuery = None,
) -> DeliveryPage:
    """What was sent to whom, when, on which basis, with what result; no message bodies.

    `next_cursor` is signed for this tenant: pass it back unchanged for the next page.
    """
    tenant = tenant_of(principal, tenant_id, field="query.tenant_id")
    query = DeliveryFilter(
        tenant_id=tenant,
        note_id=note_id,
        status=delivery_status,
        limit=limit,
        after=time_and_id(cursors.decode(tenant, cursor)),
    )
    docs, position = await service.deliveries(query)
    after = time_and_id_position(*position) if position is not None else None
    return DeliveryPage(
        items=[DeliveryPublic.from_document(d) for d in docs],
        next_cursor=cursors.encode(tenant, after),
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    response_model=DeliveryPublic,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Try a failed delivery again (operators)",
    responses={409: {"description": "The delivery has not failed"}},
)
async def retry_delivery(
    delivery_id: ResourceId, _: OperatorUser, service: Service
) -> DeliveryPublic:
    """Reopen a failed delivery with a fresh budget of attempts; the sender takes it up."""
    return DeliveryPublic.from_document(await service.retry(delivery_id))

"""HTTP routes of retention policies, sweeps, legal holds and receipts (operators only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends, Query, Request, Response, status

from switchboard_platform.auth import OperatorUser
from switchboard_platform.http import ResourceId, api_router

from .domain import Hold, new_id
from .policies import POLICIES
from .schemas import (
    Created,
    HoldCreate,
    HoldPublic,
    PolicyPublic,
    Receipt,
    ReceiptPage,
    SweepCreate,
    SweepPublic,
    SweepSummary,
    Verification,
)
from .service import RetentionService

router = api_router("/v1", tags=["retention"])
MAX_SEQ = 2**63 - 1
"""The largest sequence number a query can name: BSON integers are 64 bits."""


async def get_service(request: Request) -> RetentionService:
    """The service object created at start-up."""
    service: RetentionService = request.app.state.retention_service
    return service


Service = Annotated[RetentionService, Depends(get_service)]


@router.get("/policies", response_model=list[PolicyPublic], summary="The retention policy")
async def policies(_: OperatorUser) -> list[PolicyPublic]:
    """One rule per data category, with its requirement id (R-RET-1..5)."""
    return [
        PolicyPublic(
            category=p.category,
            requirement=p.requirement,
            period=p.period.iso,
            clock=p.clock,
            rule=p.rule,
        )
        for p in POLICIES
    ]


@router.post(
    "/sweeps",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Created,
    summary="Start a sweep now",
)
async def start_sweep(
    principal: OperatorUser,
    service: Service,
    body: Annotated[SweepCreate | None, Body()] = None,
) -> Created:
    """Order every data-holding service to erase what ran out; follow it at its URL.

    `as_of` sweeps as if it were then: a future time is refused in production (422) and
    allowed in dev and test, so a sweep can be tried without waiting 60 days.
    """
    request = body or SweepCreate()
    sweep_id = await service.start_sweep(
        requested_by=f"operator:{principal.sub}", as_of=request.as_of, tenant_id=request.tenant_id
    )
    return Created(id=sweep_id)


@router.get("/sweeps", response_model=list[SweepSummary], summary="Recent sweeps")
async def list_sweeps(
    _: OperatorUser, service: Service, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[SweepSummary]:
    """The newest sweeps first."""
    docs = await service.recent_sweeps(limit)
    return [SweepSummary.model_validate({**d, "id": d["_id"]}) for d in docs]


@router.get("/sweeps/{sweep_id}", response_model=SweepPublic, summary="One sweep")
async def get_sweep(_: OperatorUser, service: Service, sweep_id: ResourceId) -> SweepPublic:
    """Status (running, completed, incomplete), orders, receipts and missing answers."""
    return SweepPublic.of(await service.sweep(sweep_id))


@router.post(
    "/holds", status_code=status.HTTP_201_CREATED, response_model=HoldPublic, summary="Place a hold"
)
async def place_hold(principal: OperatorUser, service: Service, body: HoldCreate) -> HoldPublic:
    """Keep what the hold covers from sweeps and erasure until it ends or is lifted (R-RET-5)."""
    hold = Hold(
        id=new_id(),
        reason=body.reason,
        until=body.until,
        tenant_id=body.tenant_id,
        subject=body.subject.contract() if body.subject else None,
        category=str(body.category) if body.category else None,
    )
    return HoldPublic.of(await service.place_hold(hold, f"operator:{principal.sub}"))


@router.get("/holds", response_model=list[HoldPublic], summary="The legal holds")
async def list_holds(
    _: OperatorUser, service: Service, include_lifted: bool = False
) -> list[HoldPublic]:
    """Active holds (and lifted ones, with who lifted them and when)."""
    return [HoldPublic.of(d) for d in await service.holds(include_lifted=include_lifted)]


@router.delete("/holds/{hold_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Lift a hold")
async def lift_hold(principal: OperatorUser, service: Service, hold_id: ResourceId) -> Response:
    """End a hold explicitly; the next sweep erases what it kept, if due."""
    await service.lift_hold(hold_id, f"operator:{principal.sub}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/receipts", response_model=ReceiptPage, summary="The receipt chain")
async def receipts(
    _: OperatorUser,
    service: Service,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    request_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> ReceiptPage:
    """Receipts after sequence number `after`, oldest first (R-RET-6)."""
    docs = await service.receipts(after=after, limit=limit, request_id=request_id)
    items = [Receipt.of(d) for d in docs]
    return ReceiptPage(items=items, next_after=items[-1].seq if len(items) == limit else None)


@router.get("/receipts/verify", response_model=Verification, summary="Verify the chain")
async def verify(_: OperatorUser, service: Service) -> Verification:
    """Recompute every receipt's hash: `valid` and the count, or the first broken receipt."""
    verdict = await service.verify_receipts()
    return Verification(
        valid=verdict.valid, count=verdict.count, broken_at=verdict.broken_at, reason=verdict.reason
    )

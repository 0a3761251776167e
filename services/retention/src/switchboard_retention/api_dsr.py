"""HTTP routes of data-subject requests (operators only; R-DSR-15..21, R-DSR-T)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from switchboard_contracts.dsr import Correction
from switchboard_platform.auth import OperatorUser
from switchboard_platform.http import ResourceId, api_router

from .domain import Deadline, DsrStatus
from .export import ZIP, export_json, export_zip, wants_zip
from .schemas import DsrCreate, DsrCreated, DsrPublic, ExtensionCreate
from .subject_requests import DsrService, NewRequest

router = api_router("/v1/dsr", tags=["data-subject requests"])
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The request is not of a kind this applies to, or was done already"}
}


async def get_service(request: Request) -> DsrService:
    """The service object created at start-up."""
    service: DsrService = request.app.state.dsr_service
    return service


Service = Annotated[DsrService, Depends(get_service)]


def _public(service: DsrService, doc: dict[str, Any]) -> DsrPublic:
    state = service.deadline_of(doc)
    return DsrPublic.of(doc, str(state) if state else None)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=DsrCreated, summary="Record a request"
)
async def create(principal: OperatorUser, service: Service, body: DsrCreate) -> DsrCreated:
    """Record a request and ask every data-holding service; due one month after receipt."""
    new = NewRequest(
        right=body.right,
        identifiers=tuple(i.contract() for i in body.identifiers),
        tenant_id=body.tenant_id,
        details=body.details,
        corrections=tuple(Correction(field=c.field, value=c.value) for c in body.corrections),
        received_at=body.received_at,
    )
    doc = await service.create(new, f"operator:{principal.sub}")
    public = _public(service, doc)
    return DsrCreated(
        id=public.id,
        right=public.right,
        status=public.status,
        received_at=public.received_at,
        due_at=public.due_at,
    )


@router.get("", response_model=list[DsrPublic], summary="Requests, newest first")
async def listed(
    _: OperatorUser,
    service: Service,
    status_: Annotated[DsrStatus | None, Query(alias="status")] = None,
    deadline: Annotated[Deadline | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DsrPublic]:
    """Requests with each service's part; `deadline=near_due|overdue` finds those at risk."""
    docs = await service.listed(
        status=str(status_) if status_ else None, deadline_state=deadline, limit=limit
    )
    return [_public(service, d) for d in docs]


@router.get("/{request_id}", response_model=DsrPublic, summary="One request")
async def get(_: OperatorUser, service: Service, request_id: ResourceId) -> DsrPublic:
    """The request, each service's part, its due date and extensions."""
    return _public(service, await service.get(request_id))


@router.post(
    "/{request_id}/extension",
    response_model=DsrPublic,
    responses=CONFLICT,
    summary="Extend the deadline",
)
async def extend(
    principal: OperatorUser, service: Service, request_id: ResourceId, body: ExtensionCreate
) -> DsrPublic:
    """One or two more months, two at most in total, with the reason (Art. 12(3))."""
    doc = await service.extend(request_id, body.months, body.reason, f"operator:{principal.sub}")
    return _public(service, doc)


@router.post(
    "/{request_id}/lift",
    response_model=DsrPublic,
    responses=CONFLICT,
    summary="Lift a restriction or objection",
)
async def lift(principal: OperatorUser, service: Service, request_id: ResourceId) -> DsrPublic:
    """The services process the subject's data again (Art. 18(3))."""
    return _public(service, await service.lift(request_id, f"operator:{principal.sub}"))


@router.get(
    "/{request_id}/export",
    responses={
        **CONFLICT,
        200: {
            "description": "The answer as JSON, or a ZIP of JSON files per service",
            "content": {"application/json": {}, ZIP: {}},
        },
    },
    summary="The subject's data",
)
async def export(
    principal: OperatorUser,
    service: Service,
    request_id: ResourceId,
    accept: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    """The assembled answer of every service (Art. 15(3)); `Accept: application/zip` for a
    ZIP of one JSON file per service (Art. 20)."""
    as_zip = wants_zip(accept)
    doc, fragments = await service.export(
        request_id, f"operator:{principal.sub}", ZIP if as_zip else "application/json"
    )
    if as_zip:
        name = f"dsr-{request_id}.zip"
        return Response(
            export_zip(doc, fragments),
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return JSONResponse(export_json(doc, fragments))

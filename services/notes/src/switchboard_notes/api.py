"""HTTP routes of the notes service: parse, authorise, call the use case, shape the reply."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from switchboard_platform.auth import Principal, Role, require_roles

from .domain import NoteFilter
from .schemas import (
    AgentRatingsPublic,
    NotePage,
    NotePublic,
    RatingCreate,
    RatingPublic,
    decode_cursor,
    encode_cursor,
)
from .service import NotesService

router = APIRouter(prefix="/v1", tags=["notes"])

Client = Annotated[Principal, Depends(require_roles(Role.CLIENT))]
Operator = Annotated[Principal, Depends(require_roles(Role.OPERATOR))]


def get_service(request: Request) -> NotesService:
    """The service object created at start-up."""
    service: NotesService = request.app.state.notes_service
    return service


Service = Annotated[NotesService, Depends(get_service)]


def _tenant(principal: Principal) -> str:
    assert principal.tenant is not None  # guaranteed for clients by the token verifier
    return principal.tenant


@router.get("/notes", response_model=NotePage, summary="The tenant's notes, newest call first")
async def list_notes(
    principal: Client,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    started_from: Annotated[datetime | None, Query(alias="from")] = None,
    started_to: Annotated[datetime | None, Query(alias="to")] = None,
    contact_person: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> NotePage:
    """Page through the caller's tenant's notes, filtered by time, contact person and text."""
    query = NoteFilter(
        tenant_id=_tenant(principal),
        started_from=started_from,
        started_to=started_to,
        contact_person=contact_person,
        text=q,
        limit=limit,
        after=decode_cursor(cursor),
    )
    docs, position = await service.list_notes(query)
    items = [NotePublic.from_document(d) for d in docs]
    return NotePage(items=items, next_cursor=encode_cursor(position))


@router.get("/notes/{note_id}", response_model=NotePublic, summary="One note")
async def get_note(note_id: str, principal: Client, service: Service) -> NotePublic:
    """A note of the caller's tenant; 404 for any other."""
    return NotePublic.from_document(await service.get(_tenant(principal), note_id))


@router.delete("/notes/{note_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a note")
async def delete_note(note_id: str, principal: Client, service: Service) -> Response:
    """Delete a note of the caller's tenant (R-NOTE-2)."""
    await service.delete(_tenant(principal), note_id, deleted_by=principal.sub)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/notes/{note_id}/rating",
    response_model=RatingPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Rate a note",
)
async def rate_note(
    note_id: str, body: RatingCreate, principal: Client, service: Service
) -> RatingPublic:
    """Give feedback on a note (R-NOTE-3); a second rating replaces the first."""
    rating = await service.rate(
        _tenant(principal), note_id, score=body.score, comment=body.comment, rated_by=principal.sub
    )
    return RatingPublic(
        note_id=rating.note_id, score=rating.score, comment=rating.comment, rated_at=rating.rated_at
    )


@router.get(
    "/agents/ratings",
    response_model=list[AgentRatingsPublic],
    summary="Ratings per agent across tenants (operators)",
)
async def agent_ratings(
    _: Operator, service: Service, agent_id: Annotated[str | None, Query(max_length=200)] = None
) -> list[AgentRatingsPublic]:
    """Count, average and recent comments per secretary, to steer allocation."""
    stats = await service.agent_ratings(agent_id)
    return [AgentRatingsPublic.model_validate(s, from_attributes=True) for s in stats]

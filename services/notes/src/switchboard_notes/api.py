"""HTTP routes of the notes service: parse, authorise, call the use case, shape the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from pydantic import AfterValidator, StringConstraints

from switchboard_platform.auth import ClientUser, OperatorUser, Principal
from switchboard_platform.cursors import CursorCodec, time_and_id, time_and_id_position
from switchboard_platform.http import ResourceId, api_router
from switchboard_platform.inputs import Moment, clean_line

from .domain import NoteFilter
from .schemas import AgentRatingsPublic, NotePage, NotePublic, RatingCreate, RatingPublic
from .service import NotesService

router = api_router("/v1", tags=["notes"])

Client = ClientUser
Operator = OperatorUser
SearchText = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(clean_line)
]
"""A search term: NFC like the stored notes, no control characters."""


async def get_service(request: Request) -> NotesService:
    """The service object created at start-up."""
    service: NotesService = request.app.state.notes_service
    return service


async def get_cursors(request: Request) -> CursorCodec:
    """The signer of this listing's page cursors."""
    cursors: CursorCodec = request.app.state.note_cursors
    return cursors


Service = Annotated[NotesService, Depends(get_service)]
Cursors = Annotated[CursorCodec, Depends(get_cursors)]


def _tenant(principal: Principal) -> str:
    assert principal.tenant is not None  # guaranteed for clients by the token verifier
    return principal.tenant


@router.get("/notes", response_model=NotePage, summary="The tenant's notes, newest call first")
async def list_notes(
    principal: Client,
    service: Service,
    cursors: Cursors,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    started_from: Annotated[Moment | None, Query(alias="from")] = None,
    started_to: Annotated[Moment | None, Query(alias="to")] = None,
    contact_person: Annotated[SearchText | None, Query(max_length=200)] = None,
    q: Annotated[SearchText | None, Query()] = None,
) -> NotePage:
    """Page through the caller's tenant's notes, filtered by time, contact person and text.

    `next_cursor` is signed for this tenant: pass it back unchanged for the next page.
    """
    tenant = _tenant(principal)
    query = NoteFilter(
        tenant_id=tenant,
        started_from=started_from,
        started_to=started_to,
        contact_person=contact_person,
        text=q,
        limit=limit,
        after=time_and_id(cursors.decode(tenant, cursor)),
    )
    docs, position = await service.list_notes(query)
    items = [NotePublic.from_document(d) for d in docs]
    after = time_and_id_position(*position) if position is not None else None
    return NotePage(items=items, next_cursor=cursors.encode(tenant, after))


@router.get("/notes/{note_id}", response_model=NotePublic, summary="One note")
async def get_note(note_id: ResourceId, principal: Client, service: Service) -> NotePublic:
    """A note of the caller's tenant; 404 for any other."""
    return NotePublic.from_document(await service.get(_tenant(principal), note_id))


@router.delete(
    "/notes/{note_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a note",
    responses={409: {"description": "The caller restricted processing (R-DSR-18): kept"}},
)
async def delete_note(note_id: ResourceId, principal: Client, service: Service) -> Response:
    """Delete a note of the caller's tenant (R-NOTE-2); a restricted caller's note is kept
    until the restriction is lifted (409)."""
    await service.delete(_tenant(principal), note_id, deleted_by=principal.sub)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/notes/{note_id}/rating",
    response_model=RatingPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Rate a note",
    responses={409: {"description": "The caller restricted processing (R-DSR-18)"}},
)
async def rate_note(
    note_id: ResourceId, body: RatingCreate, principal: Client, service: Service
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

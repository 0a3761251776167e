"""Use cases of data-subject requests (R-DSR-15..21, R-DSR-T): record, ask, collect, export."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchboard_contracts import Event, make_event
from switchboard_contracts.categories import DataCategory, RecordCount
from switchboard_contracts.common import SubjectId
from switchboard_contracts.dsr import Correction, DataSubjectRight, DsrFragment, DsrRequested
from switchboard_contracts.retention import (
    RetentionCompleted,
    RetentionDue,
    RetentionReason,
    SubjectScope,
)
from switchboard_platform.errors import Conflict, NotFound
from switchboard_platform.known_tenants import require_known_tenant
from switchboard_platform.mongo import Document, as_utc
from switchboard_platform.subjects import subject_key

from . import metrics
from .domain import (
    ALL_TENANTS,
    EXPORTING,
    RESTRICTING,
    SOURCE,
    Deadline,
    DsrStatus,
    check_extension,
    check_received,
    deadline,
    dsr_status,
    due_at,
    epoch_ms,
    new_id,
    utc_now,
)
from .dsr_store import FRAGMENTS, DsrStore
from .holds import HoldStore
from .policies import retention_periods
from .tenants import TenantStore

log = logging.getLogger(__name__)
SERVICE = "retention"  # its own part of an erasure's answer
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A request as an operator recorded it, its inputs already checked."""

    right: DataSubjectRight
    identifiers: tuple[SubjectId, ...]
    tenant_id: str | None = None
    details: str | None = None
    corrections: tuple[Correction, ...] = ()
    received_at: datetime | None = None


def _summary(counts: Sequence[Any], **extra: Any) -> Document:
    return {"counts": [c.model_dump(mode="json") for c in counts], **extra}


class DsrService:
    """Records requests, asks every data-holding service, collects and assembles answers."""

    def __init__(
        self,
        *,
        requests: DsrStore,
        holds: HoldStore,
        tenants: TenantStore,
        participants: tuple[str, ...],
        answer_timeout_s: float,
        near_due_days: int,
        events_written: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self._requests = requests
        self._holds = holds
        self._tenants = tenants
        self._participants = participants
        self._timeout = timedelta(seconds=answer_timeout_s)
        self._near_days = near_due_days
        self._events_written = events_written
        self._clock = clock

    def deadline_of(self, doc: Document, now: datetime | None = None) -> Deadline | None:
        """How an unfinished request stands against its due date (None once completed)."""
        if doc.get("status") == DsrStatus.COMPLETED:
            return None
        return deadline(as_utc(doc["due_at"]), now or self._clock(), self._near_days)

    async def create(self, new: NewRequest, created_by: str) -> Document:
        """Record a request and ask every service; due one month after receipt (R-DSR-T).

        A request limited to a tenant retention never learnt of is refused (422): with a
        mistyped id the services would find nothing, and the answer would say there is none.
        """
        now = self._clock()
        received = as_utc(new.received_at) if new.received_at else now
        check_received(received, now)
        if new.tenant_id is not None:
            await require_known_tenant(self._tenants, new.tenant_id, field="body.tenant_id")
        request_id = new_id()
        due = due_at(received)
        doc: Document = {
            "_id": request_id,
            "right": str(new.right),
            "identifiers": [i.model_dump(mode="json") for i in new.identifiers],
            "details": new.details,
            "corrections": [c.model_dump(mode="json") for c in new.corrections],
            "received_at": received,
            "received_ms": epoch_ms(received),
            "due_at": due,
            "due_ms": epoch_ms(due),
            "extensions": [],
            "status": str(DsrStatus.OPEN),
            "participants": list(self._participants),
            "answered": [],
            "parts": {},
            "lift_answered": [],
            "lift_parts": {},
            "exports": [],
            "lifted": False,
            "deadline_ms": epoch_ms(now + self._timeout),
            "created_by": created_by,
            "created_at": now,
        }
        if new.tenant_id is not None:
            doc["tenant_id"] = new.tenant_id
        await self._requests.insert(doc, [await self._ask(doc)])
        self._events_written()
        log.info("data-subject request recorded", extra={"request_id": request_id})
        if new.right == DataSubjectRight.ERASURE:
            await self._erase_own(doc)
        stored = await self._requests.get(request_id)
        assert stored is not None
        return stored

    async def _ask(self, doc: Document, *, lift: bool = False) -> Event[Any]:
        """The event that asks the services: an erasure order, or `dsr.requested`."""
        tenant = doc.get("tenant_id")
        identifiers = tuple(SubjectId.model_validate(i) for i in doc["identifiers"])
        envelope = {"tenant_id": tenant or ALL_TENANTS, "source": SOURCE, "subject": doc["_id"]}
        if doc["right"] == DataSubjectRight.ERASURE:
            received = as_utc(doc["received_at"])
            holds = await self._holds.active(self._clock().date())
            order = RetentionDue(
                request_id=doc["_id"],
                scope=SubjectScope(kind="subject", identifiers=identifiers, tenant_id=tenant),
                reason=RetentionReason.DATA_SUBJECT_REQUEST,
                issued_at=received,
                holds=tuple(h.as_contract() for h in holds),
            )
            return make_event(order, **envelope)
        payload = DsrRequested(
            request_id=doc["_id"],
            right=DataSubjectRight(doc["right"]),
            identifiers=identifiers,
            tenant_id=tenant,
            details=doc.get("details"),
            requested_at=as_utc(doc["received_at"]),
            due_at=as_utc(doc["due_at"]),
            corrections=tuple(Correction.model_validate(c) for c in doc.get("corrections") or []),
            lift=lift,
            retention_periods=retention_periods(),
        )
        return make_event(payload, **envelope)

    async def get(self, request_id: str) -> Document:
        """One request, or NotFound."""
        doc = await self._requests.get(request_id)
        if doc is None:
            raise NotFound("request not found")
        return doc

    async def listed(
        self, *, status: str | None, deadline_state: Deadline | None, limit: int
    ) -> list[Document]:
        """Requests, newest first; optionally only those in one deadline state."""
        docs = await self._requests.listed(status=status, limit=limit)
        if deadline_state is None:
            return docs
        now = self._clock()
        return [d for d in docs if self.deadline_of(d, now) is deadline_state]

    async def extend(self, request_id: str, months: int, reason: str, by: str) -> Document:
        """Extend the deadline by one or two months, with the reason (Art. 12(3), R-DSR-T)."""
        doc = await self.get(request_id)
        extended = sum(int(e["months"]) for e in doc.get("extensions") or [])
        now = self._clock()
        received = as_utc(doc["received_at"])
        check_extension(
            status=doc["status"], extended=extended, months=months, received_at=received, now=now
        )
        due = due_at(received, extended + months)
        entry = {"months": months, "reason": reason, "by": by, "at": now.isoformat()}
        changes = {
            "$set": {"due_at": due, "due_ms": epoch_ms(due)},
            "$addToSet": {"extensions": entry},
        }
        updated = await self._requests.update(request_id, changes)
        assert updated is not None
        return updated

    async def lift(self, request_id: str, by: str) -> Document:
        """End a restriction or objection: the services process the subject's data again."""
        doc = await self.get(request_id)
        if doc["right"] not in RESTRICTING:
            raise Conflict("only a restriction or an objection can be lifted")
        if doc.get("lifted"):
            raise Conflict("the request was lifted already")
        now = self._clock()
        changes = {"$set": {"lifted": True, "lifted_at": now.isoformat(), "lifted_by": by}}
        updated = await self._requests.update(
            request_id, changes, [await self._ask(doc, lift=True)]
        )
        self._events_written()
        assert updated is not None
        return updated

    async def record_fragment(self, event: Event[DsrFragment]) -> None:
        """Keep a service's answer; once all its parts are in, the service has answered."""
        fragment = event.data
        doc = await self._requests.get(fragment.request_id)
        if doc is None:
            log.warning("answer to an unknown request", extra={"request_id": fragment.request_id})
            return
        await self._requests.keep_fragment(fragment, event.tenantid, self._clock())
        phase = "lift" if fragment.lifted else "answer"
        stored = [
            f
            for f in await self._requests.fragments(fragment.request_id, phase)
            if f["service"] == fragment.service
        ]
        if len({f["part"] for f in stored}) < fragment.parts:
            return
        first = next(f["fragment"] for f in stored if f["part"] == 1)
        summary = {
            "answered_at": first["completed_at"],
            "counts": first.get("counts") or [],
            "remarks": first.get("remarks"),
            "records": sum(len(f["fragment"].get("records") or []) for f in stored),
        }
        prefix = "lift_" if fragment.lifted else ""
        await self._answered(doc["_id"], fragment.service, summary, prefix)

    async def _erase_own(self, doc: Document) -> None:
        """What this service holds about the subject: the answers it kept of their earlier
        access and portability requests, the services' full records about them (R-DSR-17).

        Answered as retention's own part of the erasure, after the request is stored (a
        crash in between: `tick` does it). Those answers' own clock is the call data's.
        `create` and a `tick` (of this replica or another) can both get here for one request:
        the second finds nothing left, and its count of 0 never replaces the first's.
        """
        keys = {subject_key(SubjectId.model_validate(i)) for i in doc["identifiers"]}
        tenant = doc.get("tenant_id")
        erased = await self._requests.erase_fragments(
            request_ids=await self._requests.exported_about(keys, tenant), tenant_id=tenant
        )
        count = RecordCount(category=DataCategory.CALL_DATA, collection=FRAGMENTS, count=erased)
        summary = _summary([count] if erased else [], answered_at=self._clock().isoformat())
        await self._answered(doc["_id"], SERVICE, summary, "", only_first=not erased)
        if erased:
            log.info("kept answers erased", extra={"request_id": doc["_id"], "count": erased})

    async def record_erasure(self, receipt: RetentionCompleted) -> None:
        """A service's receipt for an erasure request is its part of the answer (R-DSR-17)."""
        doc = await self._requests.get(receipt.request_id)
        if doc is None or doc["right"] != DataSubjectRight.ERASURE:
            log.warning("receipt for an unknown order", extra={"request_id": receipt.request_id})
            return
        summary = _summary(
            receipt.erased,
            answered_at=receipt.completed_at.isoformat(),
            retained=[r.model_dump(mode="json") for r in receipt.retained],
        )
        await self._answered(doc["_id"], receipt.service, summary, "")

    async def _answered(
        self,
        request_id: str,
        service: str,
        summary: Document,
        prefix: str,
        *,
        only_first: bool = False,
    ) -> None:
        """Record `service`'s part; `only_first`: unless it has answered already."""
        changes = {
            "$set": {f"{prefix}parts.{service}": summary},
            "$addToSet": {f"{prefix}answered": service},
        }
        doc = await self._requests.update(
            request_id, changes, unless_answered_by=service if only_first else None
        )
        if doc is not None and not prefix:
            await self._settle(doc, self._clock())

    async def _settle(self, doc: Document, now: datetime) -> str:
        """The request's status now (written when it changed)."""
        parts = doc.get("parts") or {}
        status = dsr_status(
            expected=doc.get("participants") or [],
            answered=doc.get("answered") or [],
            kept_anything=any(p.get("retained") for p in parts.values()),
            timed_out=epoch_ms(now) > int(doc["deadline_ms"]),
        )
        if status != doc.get("status"):
            fields: Document = {"status": str(status)}
            if status is DsrStatus.COMPLETED:
                fields["completed_at"] = now.isoformat()
            await self._requests.update(doc["_id"], {"$set": fields})
            log.info("data-subject request %s", status, extra={"request_id": doc["_id"]})
        return str(status)

    async def export(self, request_id: str, by: str, media: str) -> tuple[Document, list[Document]]:
        """The request and each service's answer, for the subject (Art. 15(3), Art. 20).

        Every export is recorded on the request: what left, in which form, for whom, when.
        """
        doc = await self.get(request_id)
        if doc["right"] not in EXPORTING:
            raise Conflict("only access and portability requests have an export")
        fragments = await self._requests.fragments(request_id)
        entry = f"{self._clock().isoformat()}|{by}|{media}"
        await self._requests.update(request_id, {"$addToSet": {"exports": entry}})
        return doc, fragments

    async def _record_delay(self, doc: Document, now: datetime) -> None:
        """A request past its deadline gets its delay on record, with the reason: the
        services whose answers are missing (R-DSR-T: delays are recorded with their reason)."""
        answered = set(doc.get("answered") or [])
        missing = [s for s in doc.get("participants") or [] if s not in answered]
        reason = "past due with no answer from " + ", ".join(missing) if missing else "past due"
        if await self._requests.mark_overdue(doc["_id"], now, reason):
            log.warning(
                "data-subject request overdue", extra={"request_id": doc["_id"], "reason": reason}
            )

    async def tick(self, now: datetime) -> None:
        """Requests past their answer deadline with answers missing are partially completed;
        refresh the deadline gauges (R-DSR-T)."""
        counts = dict.fromkeys(Deadline, 0)
        for doc in await self._requests.unfinished():
            if doc["right"] == DataSubjectRight.ERASURE and SERVICE not in doc["answered"]:
                await self._erase_own(doc)  # stopped between recording and erasing
            doc = {**doc, "status": await self._settle(doc, now)}  # completed by this tick?
            state = self.deadline_of(doc, now)
            if state is not None:
                counts[state] += 1
            if state is Deadline.OVERDUE and not doc.get("overdue"):
                await self._record_delay(doc, now)
        for state, n in counts.items():
            metrics.DSR_UNFINISHED.labels(deadline=str(state)).set(n)

"""One attempt of one claimed transfer: decide, call the CRM, write the outcome.

Every attempt ends in an `Outcome`, written in one update of the transfer (status, next
due time, log entry, `crm.*` event) plus what it taught about the connector: a success
closes its circuit, a 429 pauses it, 5xx and timeouts count towards its breaker, 401/403
put it on `needs_attention` (its transfers wait for new credentials), 410 disables it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from switchboard_contracts import Event
from switchboard_contracts.delivery import Safeguard
from switchboard_platform.consumer import is_transient_error
from switchboard_platform.flows import NOTE_TO_CRM, observe_flow
from switchboard_platform.mongo import Document

from .config import CrmSyncSettings
from .connector_store import ConnectorStore
from .connectors import ConnectorFactory, CrmError, Failure
from .credentials import CredentialsUnreadable, Keyring
from .domain import (
    RESTRICTED,
    Destination,
    Kind,
    NoteContent,
    Operation,
    Restricted,
    TransferStatus,
    Verdict,
    may_transfer,
    never_restricted,
)
from .events import Attempt
from .mapping import FieldMapping
from .record_store import RecordStore
from .retry import Backoff, Breaker
from .sync import Synchroniser
from .tenant_store import TenantStore
from .transfer_store import TransferStore

log = logging.getLogger(__name__)

WAIT_FOR_TENANT_S = 2.0
ATTEMPT_SHARE_OF_LEASE = 0.8
HOLD_S = 5.0
S = TransferStatus


@dataclass
class Outcome:
    """How an attempt ended and what follows."""

    status: TransferStatus
    outcome: str
    detail: str = ""
    status_code: int | None = None
    will_retry: bool = False
    due_in: float = 0.0
    counted: bool = True
    """False for a deferral that never reached the CRM: no log entry, no event."""
    drop_content: bool = False
    connector: dict[str, Any] = field(default_factory=dict)
    failure: Failure | None = None
    wait_s: float | None = None
    about_connector: bool = True
    """False for an outcome that says nothing about the connector's health (a restriction)."""


class Delivery:
    """Runs claimed transfers against their connectors."""

    def __init__(
        self,
        *,
        settings: CrmSyncSettings,
        transfers: TransferStore,
        connectors: ConnectorStore,
        records: RecordStore,
        tenants: TenantStore,
        keyring: Keyring,
        factory: ConnectorFactory,
        events_written: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        restricted: Restricted = never_restricted,
    ) -> None:
        self._settings = settings
        self._transfers = transfers
        self._connectors = connectors
        self._tenants = tenants
        self._keyring = keyring
        self._factory = factory
        self._events_written = events_written
        self._clock = clock
        self._restricted = restricted  # R-DSR-18: asked for the caller before content leaves
        self._sync = Synchroniser(records, transfers, clock=clock)
        self._backoff = Backoff(settings.retry_base_s, settings.retry_max_s)
        self._breaker = Breaker(settings.breaker_threshold, settings.breaker_open_s)
        self._last_success_write: dict[str, float] = {}

    async def run(self, doc: Document, cdoc: Document | None) -> None:
        """Attempt the claimed transfer `doc` with its connector `cdoc` (read as it was
        claimed; None if removed) and record the outcome."""
        destination = (cdoc or {}).get("destination") or doc.get("destination") or ""
        try:
            # the outcome must be written before the claim's lease ends and another takes it
            async with asyncio.timeout(self._settings.transfer_lease_s * ATTEMPT_SHARE_OF_LEASE):
                outcome, destination = await self._attempt(doc, cdoc, destination)
        except CrmError as err:
            outcome = self._failed(doc, err)
        except TimeoutError:
            outcome = self._failed(doc, CrmError(Failure.UNAVAILABLE, "attempt ran out of time"))
        except CredentialsUnreadable:
            outcome = Outcome(
                S.PENDING, "held", "credentials unreadable", will_retry=True, due_in=HOLD_S
            )
            outcome.connector = {"attention": "credentials_unreadable"}
        except Exception as exc:
            if is_transient_error(exc):
                raise  # the database is away: the claim lapses and the transfer comes again
            log.exception("transfer attempt failed", extra={"transfer_id": doc["_id"]})
            outcome = Outcome(S.FAILED, "failed", f"internal error ({type(exc).__name__})")
        await self._record(doc, cdoc, destination, outcome)

    async def _attempt(
        self, doc: Document, cdoc: Document | None, destination: str
    ) -> tuple[Outcome, str]:
        sync = doc["operation"] == Operation.SYNC
        if cdoc is None:
            closed = S.CANCELLED if sync else S.NOT_DELETED
            return Outcome(closed, str(closed), "connector removed", drop_content=True), destination
        if not cdoc.get("enabled"):
            closed = S.CANCELLED if sync else S.NOT_DELETED
            return Outcome(
                closed, str(closed), "connector disabled", drop_content=True
            ), destination
        if cdoc.get("attention") or float(cdoc.get("paused_until") or 0) > self._clock():
            return Outcome(S.PENDING, "deferred", counted=False), destination
        note: NoteContent | None = None
        if sync:
            if doc.get("content") is None:
                return Outcome(S.CANCELLED, "cancelled", "the note was deleted"), destination
            note = NoteContent.from_document(doc["tenant_id"], doc["content"])
            if await self._restricted(doc["tenant_id"], note.caller):
                # kept, not processed (Art. 18): the content stays until the call's clock runs out
                restricted = Outcome(S.CANCELLED, "cancelled", RESTRICTED, about_connector=False)
                return restricted, destination
            decision = await self._policy(doc, cdoc)
            if decision is not None:
                return decision, destination
        credentials = self._keyring.open(cdoc["credentials"], bound_to=cdoc["_id"])
        if not self._keyring.is_current(cdoc["credentials"]):
            resealed = self._keyring.seal(credentials, bound_to=cdoc["_id"])
            await self._connectors.reseal(cdoc["_id"], cdoc["credentials_version"], resealed)
        connector = await self._factory.build(
            Kind(cdoc["kind"]),
            tenant_id=doc["tenant_id"],
            credentials=credentials,
            mapping=FieldMapping.model_validate(cdoc.get("mapping") or {}),
        )
        destination = connector.destination
        if note is not None:
            status_code, detail = await self._sync.create(connector, doc, note)
            observe_flow(NOTE_TO_CRM, note.created_at, trace_id=doc.get("trace_id"))
            outcome = Outcome(S.SYNCED, "synced", detail, status_code, drop_content=True)
        else:
            outcome = await self._delete(connector, doc)
        if connector.pause_s:
            outcome.connector["paused_until"] = self._clock() + connector.pause_s
        return outcome, destination

    async def _policy(self, doc: Document, cdoc: Document) -> Outcome | None:
        tenant = await self._tenants.get(doc["tenant_id"])
        safeguard = cdoc.get("safeguard")
        decision = may_transfer(
            tenant,
            Destination(
                host=cdoc.get("destination") or "",
                region=cdoc["region"],
                safeguard=Safeguard(safeguard) if safeguard else None,
                secrecy_opt_in=bool(cdoc.get("secrecy_opt_in")),
            ),
            waited=timedelta(seconds=self._clock() - float(doc.get("created_ts") or 0)),
            grace=timedelta(seconds=self._settings.unknown_tenant_grace_s),
        )
        if decision.verdict is Verdict.WAIT:
            return Outcome(S.PENDING, "deferred", counted=False, due_in=WAIT_FOR_TENANT_S)
        if decision.verdict is Verdict.REFUSE:
            return Outcome(S.REFUSED, "refused", decision.reason)
        return None

    async def _delete(self, connector: Any, doc: Document) -> Outcome:
        result = await self._sync.delete(connector, doc)
        if result.wait:
            return Outcome(S.PENDING, "deferred", counted=False, due_in=result.wait)
        if result.status_code is None:
            return Outcome(S.NOT_DELETED, "not_deleted", result.detail)
        return Outcome(S.DELETED, "deleted", result.detail, result.status_code)

    def _failed(self, doc: Document, err: CrmError) -> Outcome:
        attempt = int(doc.get("attempts") or 1) - int(doc.get("retry_from") or 0)
        last = attempt >= self._settings.max_attempts
        code, detail = err.status_code, err.detail
        if err.failure in (Failure.RATE_LIMITED, Failure.UNAVAILABLE):
            if last:
                return Outcome(S.FAILED, "failed", f"{detail}; gave up", code, failure=err.failure)
            delay = self._backoff.delay(attempt, at_least=err.wait_s)
            return Outcome(
                S.PENDING,
                "retry",
                detail,
                code,
                True,
                delay,
                failure=err.failure,
                wait_s=err.wait_s,
            )
        if err.failure is Failure.UNAUTHORIZED:
            reason = "credentials_refused"
            return Outcome(
                S.PENDING, "held", detail, code, True, HOLD_S, connector={"attention": reason}
            )
        if err.failure is Failure.DESTINATION_REFUSED:
            return Outcome(
                S.PENDING,
                "held",
                f"destination refused: {detail}",
                None,
                True,
                HOLD_S,
                connector={"attention": "destination_refused"},
            )
        if err.failure is Failure.GONE:
            return Outcome(
                S.FAILED,
                "failed",
                "receiver answered 410 Gone; connector disabled",
                code,
                connector={"enabled": False, "disabled_reason": "gone"},
                failure=err.failure,
            )
        return Outcome(S.FAILED, "failed", detail, code, failure=err.failure)

    async def _record(
        self, doc: Document, cdoc: Document | None, destination: str, outcome: Outcome
    ) -> None:
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        attempt = Attempt(
            transfer_id=doc["_id"],
            operation=doc["operation"],
            note_id=doc["note_id"],
            tenant_id=doc["tenant_id"],
            kind=Kind(doc["connector"]),
            destination=destination,
            region=(cdoc or doc).get("region") or doc.get("destination_region") or "EU",
            safeguard=(cdoc or doc).get("safeguard"),
            attempt=int(doc.get("attempts") or 1),
            at=at,
        )
        fields: Document = {
            "status": str(outcome.status),
            "due_at": now + outcome.due_in,
            "updated_at": at,
        }
        events: list[Event[Any]] = []
        entry = None
        if outcome.counted:
            fields.update(
                {
                    "destination": destination,
                    "destination_region": attempt.region,
                    "safeguard": attempt.safeguard,
                    "last_status_code": outcome.status_code,
                    "last_detail": outcome.detail,
                }
            )
            entry = attempt.entry(
                outcome.outcome,
                status_code=outcome.status_code,
                detail=outcome.detail,
                will_retry=outcome.will_retry,
            )
            if outcome.status in (S.SYNCED, S.DELETED) and outcome.status_code is not None:
                events.append(attempt.synced(outcome.status_code))
            else:
                events.append(
                    attempt.failed(
                        outcome.status_code,
                        outcome.detail or outcome.outcome,
                        will_retry=outcome.will_retry,
                    )
                )
        written = await self._transfers.finish(
            doc["_id"],
            doc["claim"],
            fields=fields,
            entry=entry,
            events=events,
            unset=("content",) if outcome.drop_content else (),
            attempts_back=not outcome.counted,
        )
        if events and written:
            self._events_written()
        if not written:
            log.warning(
                "transfer claim lost before its outcome was written",
                extra={"transfer_id": doc["_id"]},
            )
        if cdoc is not None and outcome.counted and outcome.about_connector:
            await self._learn(cdoc, outcome, now, at)
        log.info(
            "transfer attempt",
            extra={
                "transfer_id": doc["_id"],
                "connector": doc["connector"],
                "operation": doc["operation"],
                "outcome": outcome.outcome,
                "status_code": outcome.status_code,
                "attempt": attempt.attempt,
            },
        )

    async def _learn(self, cdoc: Document, outcome: Outcome, now: float, at: datetime) -> None:
        """What the attempt says about the connector's health."""
        cid = cdoc["_id"]
        version = cdoc.get("credentials_version")
        fields: Document = dict(outcome.connector)
        if outcome.status in (S.SYNCED, S.DELETED):
            recent = self._last_success_write.get(cid, 0.0) > now - 1.0
            if recent and not fields and not cdoc.get("failures_in_a_row"):
                return
            self._last_success_write[cid] = now
            fields.update(
                {
                    "last_success_at": at,
                    "last_status_code": outcome.status_code,
                    "failures_in_a_row": 0,
                }
            )
            await self._connectors.record_health(cid, fields)
            return
        fields.update(
            {
                "last_failure_at": at,
                "last_status_code": outcome.status_code,
                "last_error": outcome.detail[:200],
            }
        )
        if outcome.failure is Failure.RATE_LIMITED:
            wait = outcome.wait_s if outcome.wait_s is not None else outcome.due_in
            fields["paused_until"] = max(float(cdoc.get("paused_until") or 0), now + wait)
        if outcome.failure is Failure.UNAVAILABLE:
            count = await self._connectors.add_failure(cid)
            if self._breaker.opens(count):
                fields["paused_until"] = now + self._breaker.open_s
                log.warning("circuit opened", extra={"connector": cdoc["kind"], "failures": count})
        elif outcome.failure is Failure.REJECTED:
            fields["failures_in_a_row"] = 0  # the CRM answers: it is not dead
        guarded = "attention" in fields or "enabled" in fields
        await self._connectors.record_health(cid, fields, version=version if guarded else None)

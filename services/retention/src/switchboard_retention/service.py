"""Use cases of retention: sweeps and their answers, legal holds, the receipt chain."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from switchboard_contracts import Event, make_event
from switchboard_contracts.categories import DataCategory, RecordCount
from switchboard_contracts.retention import CategoryScope, RetentionCompleted, RetentionDue
from switchboard_platform.errors import NotFound
from switchboard_platform.known_tenants import require_known_tenant
from switchboard_platform.mongo import Document, as_utc

from . import metrics
from .chain import Verdict
from .domain import (
    ALL_TENANTS,
    SOURCE,
    Hold,
    SweepStatus,
    answer_key,
    category_orders,
    check_as_of,
    check_until,
    epoch_ms,
    new_id,
    sweep_status,
    tenant_orders,
    utc_now,
)
from .dsr_store import FRAGMENTS, DsrStore
from .holds import HoldStore
from .policies import policy_for
from .receipts import ReceiptStore
from .sweeps import SweepStore
from .tenants import TenantStore

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def order_event(order: RetentionDue) -> Event[RetentionDue]:
    """An order in its envelope: keyed by its tenant, or `*` for every tenant."""
    scope = order.scope
    tenant = getattr(scope, "tenant_id", None) or ALL_TENANTS
    return make_event(order, tenant_id=tenant, source=SOURCE, subject=order.request_id)


def _order_summary(order: RetentionDue) -> Document:
    scope = order.scope
    summary: Document = {"request_id": order.request_id, "kind": scope.kind}
    if isinstance(scope, CategoryScope):
        summary |= {"category": str(scope.category), "cutoff": scope.cutoff.isoformat()}
    tenant = getattr(scope, "tenant_id", None)
    if tenant is not None:
        summary["tenant_id"] = tenant
    return summary


class RetentionService:
    """Issues sweeps, records the services' receipts, keeps legal holds."""

    def __init__(
        self,
        *,
        sweeps: SweepStore,
        holds: HoldStore,
        receipts: ReceiptStore,
        tenants: TenantStore,
        requests: DsrStore,
        participants: tuple[str, ...],
        answer_timeout_s: float,
        production: bool,
        events_written: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self._sweeps = sweeps
        self._holds = holds
        self._receipts = receipts
        self._tenants = tenants
        self._requests = requests
        self.participants = participants
        self._timeout = timedelta(seconds=answer_timeout_s)
        self._production = production
        self._events_written = events_written
        self._clock = clock

    # sweeps --------------------------------------------------------------------------------

    async def start_sweep(
        self,
        *,
        requested_by: str,
        as_of: datetime | None = None,
        tenant_id: str | None = None,
        sweep_id: str | None = None,
    ) -> str:
        """Order every participant to erase what ran out by `as_of`; the sweep's id.

        One order per category (its cutoff), one per tenant whose account ran out (R-RET-3/4);
        each carries the legal holds in force. All are published from the sweep document's
        outbox, written in one insert. A sweep id used before (a scheduled slot) is not rerun.
        A sweep limited to a tenant retention never learnt of is refused (422): a mistyped id
        would sweep nothing and look done.
        """
        now = self._clock()
        as_of = as_utc(as_of) if as_of is not None else now
        check_as_of(as_of, now, production=self._production)
        if tenant_id is not None:
            await require_known_tenant(self._tenants, tenant_id, field="body.tenant_id")
        sweep_id = sweep_id or new_id()
        holds = await self._holds.active(as_of.date())
        carried = [h.as_contract() for h in holds]
        leaving = await self._tenants.due(as_of, tenant_id)
        orders = category_orders(sweep_id, as_of, carried, tenant_id)
        orders += tenant_orders(sweep_id, as_of, leaving, carried)
        doc: Document = {
            "_id": sweep_id,
            "as_of": as_of,
            "tenant_id": tenant_id,
            "issued_at": now,
            "issued_ms": epoch_ms(now),
            "requested_by": requested_by,
            "orders": [_order_summary(o) for o in orders],
            "order_ids": [o.request_id for o in orders],
            "participants": list(self.participants),
            "answered": [],
            "holds": [h.id for h in holds],
            "own_erased": 0,
            "status": str(SweepStatus.RUNNING),
            "deadline_ms": epoch_ms(now + self._timeout),
        }
        if not await self._sweeps.insert(doc, [order_event(o) for o in orders]):
            return sweep_id  # issued already (another replica took this slot): it erases
        # the service's own copies of answers, erased only by the replica that issued the
        # sweep, after it is recorded: proven like everyone's (R-RET-6)
        cutoff = policy_for(DataCategory.CALL_DATA).period.before(as_of)
        own_erased = await self._requests.erase_fragments(cutoff=cutoff, tenant_id=tenant_id)
        settled = [t for t in leaving if not any(h.touches_tenant(t) for h in holds)]
        for offboarded in settled:  # an offboarded tenant's kept answers go with it (R-RET-4)
            own_erased += await self._requests.erase_fragments(tenant_id=offboarded)
        if own_erased:
            own = RetentionCompleted(
                request_id=f"{sweep_id}:own",
                service="retention",
                erased=(
                    RecordCount(
                        category=DataCategory.CALL_DATA, collection=FRAGMENTS, count=own_erased
                    ),
                ),
                completed_at=self._clock(),
            )
            await self._receipts.append(own, new_id())
            await self._sweeps.set_own_erased(sweep_id, own_erased)
        await self._tenants.offboarded(settled, sweep_id)
        self._events_written()
        log.info("sweep issued", extra={"sweep_id": sweep_id, "orders": len(orders)})
        return sweep_id

    async def scheduled_sweep(self, now: datetime, interval_s: int) -> str | None:
        """The sweep of the current interval, issued once across replicas; None if done."""
        sweep_id = f"scheduled-{int(now.timestamp()) // interval_s}"
        if await self._sweeps.exists(sweep_id):
            return None
        return await self.start_sweep(requested_by="system:schedule", sweep_id=sweep_id)

    async def sweep(self, sweep_id: str) -> Document:
        """A sweep with the receipts answering it and the answers still missing."""
        doc = await self._sweeps.get(sweep_id)
        if doc is None:
            raise NotFound("sweep not found")
        answered = set(doc.get("answered") or [])
        missing = [
            {"request_id": rid, "service": svc}
            for rid in doc.get("order_ids") or []
            for svc in doc.get("participants") or []
            if answer_key(rid, svc) not in answered
        ]
        receipts = await self._receipts.of_orders(doc.get("order_ids") or [])
        return {**doc, "missing": missing, "receipts": receipts}

    async def recent_sweeps(self, limit: int) -> list[Document]:
        """The newest sweeps."""
        return await self._sweeps.recent(limit)

    # receipts ------------------------------------------------------------------------------

    async def record_receipt(self, event: Event[RetentionCompleted]) -> bool:
        """Chain a service's receipt and mark its order answered; False if no sweep issued it."""
        receipt = event.data
        seq = await self._receipts.append(receipt, event.id)
        if seq is not None:
            # a label per configured participant only: the name comes from the event, and
            # any producer could otherwise add series without bound (or with odd bytes)
            label = receipt.service if receipt.service in self.participants else "other"
            metrics.RECEIPTS.labels(service=label).inc()
            for count in receipt.erased:
                metrics.ERASED.labels(service=label, category=count.category).inc(count.count)
            for kept in receipt.retained:
                metrics.RETAINED.labels(service=label, category=kept.category).inc(kept.count)
        key = answer_key(receipt.request_id, receipt.service)
        sweep = await self._sweeps.answered(receipt.request_id, key)
        if sweep is None:
            return False
        await self._settle(sweep)
        return True

    async def _settle(self, sweep: Document) -> None:
        expected = [
            answer_key(rid, svc)
            for rid in sweep.get("order_ids") or []
            for svc in sweep.get("participants") or []
        ]
        now_ms = epoch_ms(self._clock())
        status = sweep_status(
            expected, sweep.get("answered") or [], now_ms > int(sweep["deadline_ms"])
        )
        if status is SweepStatus.COMPLETED and sweep.get("status") != status:
            await self._sweeps.set_status(sweep["_id"], status, now_ms)
            log.info("sweep completed", extra={"sweep_id": sweep["_id"]})

    async def receipts(
        self, *, after: int, limit: int, request_id: str | None = None
    ) -> list[Document]:
        """A page of the receipt chain."""
        return await self._receipts.page(after=after, limit=limit, request_id=request_id)

    async def verify_receipts(self) -> Verdict:
        """Recompute the chain (R-RET-6)."""
        verdict = await self._receipts.verify()
        metrics.CHAIN_VALID.set(int(verdict.valid))
        return verdict

    # holds ---------------------------------------------------------------------------------

    async def place_hold(self, hold: Hold, placed_by: str) -> Document:
        """Keep what the hold covers from every sweep and erasure until it ends (R-RET-5).

        A hold's tenant must be one retention learnt from `tenant.changed`, else 422: a hold
        on a mistyped id would protect nothing while it looked in force. (Holds are placed by
        operators only; the tenant is always one they named.)
        """
        now = self._clock()
        check_until(hold.until, now.date())
        if hold.tenant_id is not None:
            await require_known_tenant(self._tenants, hold.tenant_id, field="body.tenant_id")
        return await self._holds.place(hold, placed_by, now)

    async def holds(self, *, include_lifted: bool) -> list[Document]:
        """The holds, active ones (and lifted ones if asked)."""
        return await self._holds.listed(include_lifted=include_lifted)

    async def lift_hold(self, hold_id: str, lifted_by: str) -> None:
        """End a hold; the next sweep erases what it kept, if due."""
        if not await self._holds.lift(hold_id, lifted_by, self._clock()):
            raise NotFound("no active hold with this id")

    # tenants -------------------------------------------------------------------------------

    async def tenant_changed(self, event: Event[Any]) -> None:
        """Follow a tenant's contract status, for its offboarding."""
        await self._tenants.apply(event)

    # the clock -----------------------------------------------------------------------------

    async def tick(self, now: datetime) -> None:
        """Mark sweeps past their answer deadline incomplete; refresh the sweep gauges."""
        expired = await self._sweeps.expire(epoch_ms(now))
        if expired:
            log.warning("sweeps incomplete: a participant did not answer", extra={"count": expired})
        for status in SweepStatus:
            metrics.SWEEPS.labels(status=str(status)).set(await self._sweeps.count(status))

"""The part every data-holding service plays in retention and data-subject requests.

A service declares what personal data it keeps — per collection: where the data category,
the retention clock and the tenant are, which fields identify a data subject, the purpose
and recipients an access answer states, which fields may be rectified — as an `Inventory`,
and attaches a `RetentionParticipant` to its runtime. The participant then answers

- `retention.due` (R-RET-1..6, R-DSR-17): it DELETES — never masks — what the order's scope
  selects in the service's own database, keeps what a legal hold (or the `legal_hold`
  category, for subject and tenant erasure) covers, and answers `retention.completed` with
  counts per collection and category, and what it kept and why. One exception: a
  collection whose documents stand for an event that may be delivered again (a note for its
  `call.received`) declares a `Tombstone`; a subject's erasure then removes every personal
  field and leaves the id, so the redelivered event finds it and cannot bring the data back;
  the category's clock deletes the tombstone. And a field of a category kept for less
  time than its document (`shorter_lived`: a recording's reference, 30 days, in call data
  kept 60) is removed by that category's sweep, the document staying;
- `dsr.requested` (R-DSR-15..21): access and portability get the subject's records with
  purpose, category, recipients and retention end; rectification applies the corrected
  values; restriction and objection are recorded in a collection of the service, which the
  service asks with `is_restricted(tenant, identifiers)` before it processes a subject;
- `consent.changed`, where the inventory keeps data on consent (R-REC-1): a withdrawn
  recording consent removes the caller's recording references at once, and is kept 30 days
  so that a call stored later asks `recording_withdrawn` and leaves its recording out.

Answers leave through the transactional outbox of the inventory's own small collection, so a
crash never loses one. Every handler is idempotent on the order's request id.

Two differences of nx-27017 (the embedded server) are designed around: a retention clock set
with a top-level `$set` is stored there as a naive ISO string, so the clock is compared in
both forms and checked in Python before a document is deleted; and multi-document writes
filtered by `$in` on a field other than `_id` hit the wrong documents there, so deletions go
through `delete_matching` or by `_id` only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import JsonValue
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from switchboard_contracts import Event, EventPayload, make_event
from switchboard_contracts.categories import DataCategory, RecordCount
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import ConsentChanged, ConsentPurpose, ConsentStatus
from switchboard_contracts.dsr import (
    DataSubjectRight,
    DsrFragment,
    DsrRecord,
    DsrRequested,
)
from switchboard_contracts.retention import (
    CategoryScope,
    LegalHold,
    RetainedCount,
    RetentionCompleted,
    RetentionDue,
    SubjectScope,
    TenantScope,
)

from .mongo import (
    Document,
    MongoCollection,
    MongoDatabase,
    as_utc,
    delete_matching,
    update_matching,
)
from .outbox import (
    LAST,
    OUTBOX,
    PARKED,
    SINCE,
    merge_updates,
    outbox_fields_excluded,
    outbox_update,
    with_outbox,
)
from .subjects import Restricted, subject_key
from .tenancy import scoped

if TYPE_CHECKING:
    from .runtime import ServiceRuntime

log = logging.getLogger(__name__)

__all__ = [
    "LEGITIMATE_INTEREST",
    "Inventory",
    "PersonalData",
    "RetentionParticipant",
    "Tombstone",
    "Withdrawal",
]

CONSENTED = DataCategory.RECORDING
"""The category kept on the caller's consent (R-REC-1): a withdrawal removes it at once."""
WITHDRAWN = ConsentStatus.WITHDRAWN
LEGITIMATE_INTEREST = "legitimate_interest"
"""The legal basis (Art. 6(1)(f)) an objection (Art. 21) stops."""
LEGAL_DUTY_REASON = "R-RET-5: kept for its legal retention period (commercial or tax law)"
MAX_FRAGMENT_BYTES = 512 * 1024
"""A fragment stays well below Kafka's default 1 MiB message limit; longer answers are split."""
_EXPORT_SKIPPED = frozenset(outbox_fields_excluded())
_CATEGORIES = tuple(str(c) for c in DataCategory)
_DELETABLE = tuple(c for c in _CATEGORIES if c != DataCategory.LEGAL_HOLD)

Export = Callable[[Document, Sequence[SubjectId]], dict[str, JsonValue]]
"""Turns one stored document into what the subject receives of it (e.g. only their entries)."""


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What a subject's erasure leaves of a document instead of deleting it.

    `removes` are the fields unset (every field that holds personal data, the subject's
    identifiers included), `marks(now)` the fields set (e.g. `deleted_at`, which the
    service's reads already skip). What stays is bookkeeping: the id a redelivered event is
    deduplicated by, the tenant, the category and its clock.
    """

    removes: tuple[str, ...]
    marks: Callable[[datetime], Document]

    def update(self, now: datetime) -> Document:
        """The update that turns a document into its tombstone; its unpublished events go
        too (they carry what it held)."""
        # an emptied outbox, not a missing one: nx-27017 drops an append to a missing array
        # (decision 0002), and a later event of the document (a cancellation) would be lost
        removed = dict.fromkeys((*self.removes, SINCE, LAST), "")
        return {"$set": {**self.marks(now), OUTBOX: []}, "$unset": removed}

    def covers(self, path: str) -> bool:
        """Whether the tombstone removes the dotted `path` (itself or a parent of it)."""
        return any(path == f or path.startswith(f + ".") for f in self.removes)


@dataclass(frozen=True, slots=True)
class PersonalData:
    """One collection of personal data a service keeps, as retention and DSRs must see it."""

    collection: str
    purpose: str
    """Why it is kept, as an access answer states it (Art. 15(1)(a))."""
    recipients: tuple[str, ...] = ()
    """Who receives it (Art. 15(1)(c))."""
    subject_fields: Mapping[SubjectKind, tuple[str, ...]] = field(default_factory=dict)
    """The dotted paths holding each kind of subject identifier, e.g. PHONE: ("caller.phone",)."""
    rectifiable: Mapping[str, str] = field(default_factory=dict)
    """Correction field (name, phone, email, company) → the path it replaces (R-DSR-16)."""
    tenant_field: str = "tenant_id"
    category_field: str = "category"
    clock_field: str = "retention_from"
    private_fields: tuple[str, ...] = ()
    """Internal bookkeeping left out of exports (keys, leases); never personal data."""
    erase_by_subject: bool = True
    """False: a subject's erasure keeps these documents (reported as retained, `kept_reason`)."""
    kept_reason: str = ""
    export: Export | None = None
    """What of a document the subject receives; default: the document without bookkeeping."""
    tombstone: Tombstone | None = None
    """Set where a redelivered event would recreate an erased document (see `Tombstone`)."""
    call_field: str = ""
    """The field holding the call's id, where a consent withdrawal may name one call."""
    shorter_lived: Mapping[DataCategory, tuple[str, ...]] = field(default_factory=dict)
    """Text fields of a category kept for less time than their document, e.g. RECORDING:
    ("recording.url",) (R-RET-2: 30 days, in call data kept 60): that category's sweep
    removes them from the documents whose clock ran out for it; the documents stay."""

    def __post_init__(self) -> None:
        if not self.collection or "." in self.collection or self.collection.startswith("$"):
            raise ValueError(f"not a collection name: {self.collection!r}")
        if not self.erase_by_subject and not self.kept_reason:
            raise ValueError(f"{self.collection}: say why subject erasure keeps the documents")
        if self.tombstone is not None:
            kept = [
                path
                for paths in self.subject_fields.values()
                for path in paths
                if not self.tombstone.covers(path)
            ]
            if kept:
                raise ValueError(f"{self.collection}: a tombstone would keep {kept}")


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything personal a service keeps, and where its answers wait to be published."""

    service: str
    collections: tuple[PersonalData, ...]
    legal_basis: str = "Art. 6(1)(b) and Art. 28 GDPR: processing on the client's instruction"
    """The basis the service processes on, named in its answer to an objection (Art. 21)."""
    passed_on: str = ""
    """What of the data already left the service for recipients that a correction here does
    not reach, e.g. records created in the client's CRM: a rectification's answer names it,
    so the operator can tell the recipient (Art. 19 GDPR)."""
    answers_collection: str = "retention_answers"
    restrictions_collection: str = "dsr_restrictions"
    chunk: int = 2000
    """Documents selected and deleted per round trip."""

    @property
    def source(self) -> str:
        """The CloudEvents source of the service's answers."""
        return f"/switchboard/{self.service}"


class RuntimeOptions(TypedDict):
    """The `ServiceRuntime` arguments a participating service passes (see `options`)."""

    indexes: dict[str, Sequence[IndexModel]]
    outbox_collections: tuple[str, ...]
    publishes: tuple[type[EventPayload], ...]


# --- selectors ---------------------------------------------------------------------------


def _and(*clauses: Document | None) -> Document:
    parts = [c for c in clauses if c]
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _exact(value: str) -> Document:
    return {"$regex": f"^{re.escape(value)}$", "$options": "i"}


def _matchers(path: str, identifier: SubjectId) -> list[Document]:
    value = unicodedata.normalize("NFC", identifier.value).strip()
    if identifier.kind is SubjectKind.PHONE:
        return [{path: {"$in": [value]}}]
    # `$in` matches array elements on both servers; the regex ignores case on scalar fields
    return [{path: {"$in": list(dict.fromkeys([value, value.lower()]))}}, {path: _exact(value)}]


def subject_selector(data: PersonalData, identifiers: Iterable[SubjectId]) -> Document | None:
    """The documents of `data` about any of `identifiers`; None if it cannot identify them."""
    branches = [
        matcher
        for identifier in identifiers
        for path in data.subject_fields.get(identifier.kind, ())
        for matcher in _matchers(path, identifier)
    ]
    return {"$or": branches} if branches else None


def hold_selector(data: PersonalData, hold: LegalHold) -> Document | None:
    """The documents of `data` a hold covers; None if it covers none of them."""
    clauses: list[Document] = []
    if hold.tenant_id is not None:
        clauses.append({data.tenant_field: hold.tenant_id})
    if hold.category is not None:
        clauses.append({data.category_field: str(hold.category)})
    if hold.subject is not None:
        by_subject = subject_selector(data, [hold.subject])
        if by_subject is None:
            return None
        clauses.append(by_subject)
    return _and(*clauses) if clauses else None


def _holds_for(scope: Any, holds: Sequence[LegalHold]) -> list[LegalHold]:
    """The holds that can cover anything of `scope`."""
    chosen = []
    for hold in holds:
        if isinstance(scope, CategoryScope) and hold.category not in (None, scope.category):
            continue
        tenant = getattr(scope, "tenant_id", None)
        if tenant is not None and hold.tenant_id not in (None, tenant):
            continue
        chosen.append(hold)
    return chosen


def _any_text(fields: Iterable[str]) -> Document:
    """Documents holding text in any of `fields` (a missing or null field is no text)."""
    return {"$or": [{f: {"$gt": ""}} for f in fields]}


def _holds_for_fields(scope: CategoryScope, holds: Sequence[LegalHold]) -> list[LegalHold]:
    """The holds that keep a shorter-lived category's fields inside documents of another
    category: a hold on that category (its documents hold none, so it applies to the fields
    wherever they are), one on the documents' own category, or one without a category."""
    chosen = []
    for hold in holds:
        if scope.tenant_id is not None and hold.tenant_id not in (None, scope.tenant_id):
            continue
        chosen.append(
            hold.model_copy(update={"category": None}) if hold.category == scope.category else hold
        )
    return chosen


# --- clocks --------------------------------------------------------------------------------


def _moment(value: Any) -> datetime | None:
    """A stored clock as an aware datetime: a date, or nx-27017's naive ISO string."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            return as_utc(value)
        except ValueError:
            return None
    return None


def _clock_before(clock: str, cutoff: datetime) -> Document:
    """Every document whose clock may lie before `cutoff`, in either stored form.

    A date compares with the cutoff on every server. A clock nx-27017 stored as a string is
    found by its text: every string up to the day after the cutoff's (a superset, since
    "2026-01-02 10:00" and "2026-01-02T10:00" both sort below "2026-01-03"). Each candidate
    is then checked in Python. MongoDB keeps no string clocks: the second branch finds nothing
    there. One `$or`, so nx-27017 (which scans for every query) reads the collection once.
    """
    next_day = (cutoff.astimezone(UTC).date() + timedelta(days=1)).isoformat()
    return {"$or": [{clock: {"$lt": cutoff}}, {clock: {"$type": "string", "$lt": next_day}}]}


def _add_period(start: datetime, period: str) -> datetime | None:
    """`start` plus an ISO 8601 period of years, months and days (`P60D`, `P5Y`)."""
    found = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?", period)
    if found is None:
        return None
    years, months, days = (int(g or 0) for g in found.groups())
    total = start.month - 1 + months + 12 * years
    year, month = start.year + total // 12, total % 12 + 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return start.replace(year=year, month=month, day=min(start.day, last_day)) + timedelta(
        days=days
    )


# --- documents as JSON ---------------------------------------------------------------------


def _jsonable(value: Any) -> JsonValue:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if str(k) not in _EXPORT_SKIPPED}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return None  # binary bookkeeping, never a record's content
    return str(value)


def exported(doc: Document, data: PersonalData) -> dict[str, JsonValue]:
    """A stored document as the subject receives it: its id and fields, no bookkeeping."""
    left_out = _EXPORT_SKIPPED | set(data.private_fields) | {"_id"}
    fields = {k: _jsonable(v) for k, v in doc.items() if k not in left_out}
    return {"id": _jsonable(doc.get("_id")), **fields}


def _parts(records: Sequence[DsrRecord], limit: int = MAX_FRAGMENT_BYTES) -> list[list[DsrRecord]]:
    """Records packed into fragments of at most about `limit` bytes of JSON each."""
    parts: list[list[DsrRecord]] = [[]]
    size = 0
    for record in records:
        length = len(json.dumps(record.model_dump(mode="json"), ensure_ascii=False))
        if parts[-1] and size + length > limit:
            parts.append([])
            size = 0
        parts[-1].append(record)
        size += length
    return parts


def _counts(tally: Mapping[tuple[str, str], int]) -> tuple[RecordCount, ...]:
    return tuple(
        RecordCount(category=DataCategory(category), collection=collection, count=count)
        for (collection, category), count in sorted(tally.items())
        if count
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- the participant -----------------------------------------------------------------------


PARKED_EVENTS = PersonalData(
    collection=PARKED,
    purpose="Events the outbox could not publish, set aside for an operator to look into; "
    "erased with the call's data 60 days after they were set aside, or with their tenant",
    private_fields=("entry",),
)


WITHDRAWALS = "consent_withdrawals"
WITHDRAWN_CONSENTS = PersonalData(
    collection=WITHDRAWALS,
    purpose="Withdrawn recording consents, so that a call this service learns of after the "
    "withdrawal keeps no recording either (R-REC-1); erased with the recordings after 30 "
    "days, or with the caller or the tenant",
    subject_fields={kind: (f"subject.{kind}",) for kind in SubjectKind},
)
"""Kept where the inventory holds data on consent: a withdrawal can arrive before the call
it concerns (another topic, another consumer's lag), and must still apply to it."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A caller's withdrawn recording consent, as the participant keeps it."""

    call_id: str | None
    """The one call it names; None: every recording of the caller made until it."""
    occurred_at: datetime

    def covers(self, call_id: str | None, started_at: datetime | None) -> bool:
        """Whether a recording of the call `call_id`, started at `started_at`, goes (a call
        whose start is unknown is covered: removing a reference is the safe side)."""
        if self.call_id is not None:
            return self.call_id == call_id
        return started_at is None or as_utc(started_at) <= self.occurred_at


def _in_force_for(tenant_id: str) -> Document:
    """Restrictions and objections not lifted that concern `tenant_id` (its own or all)."""
    return _and(
        {"lifted_at": {"$exists": False}},
        {"$or": [{"tenant_id": tenant_id}, {"all_tenants": True}]},
    )


class RetentionParticipant:
    """Answers `retention.due` and `dsr.requested` for one service's `Inventory`."""

    def __init__(self, inventory: Inventory, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._consented = any(CONSENTED in data.shorter_lived for data in inventory.collections)
        # the outbox's parked events are every service's, so no inventory can forget them
        own = (PARKED_EVENTS, WITHDRAWN_CONSENTS) if self._consented else (PARKED_EVENTS,)
        self.inventory = replace(inventory, collections=(*inventory.collections, *own))
        self._clock = clock
        self._database: Callable[[], MongoDatabase] | None = None
        self._wake: Callable[[], None] = lambda: None

    # wiring -------------------------------------------------------------------------------

    def options(
        self,
        *,
        indexes: Mapping[str, Sequence[IndexModel]] | None = None,
        outbox_collections: Sequence[str] = (),
        publishes: Sequence[type[EventPayload]] = (),
    ) -> RuntimeOptions:
        """The service's runtime arguments with the participant's collections and topics added."""
        own: dict[str, Sequence[IndexModel]] = {
            PARKED: [
                IndexModel(
                    [("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"
                )
            ],
            self.inventory.answers_collection: [],
            self.inventory.restrictions_collection: [
                IndexModel([("keys", ASCENDING)], name="restricted_subjects")
            ],
        }
        if self._consented:
            own[WITHDRAWALS] = [
                IndexModel([("tenant_id", ASCENDING), ("key", ASCENDING)], name="withdrawn_by"),
                IndexModel(
                    [("category", ASCENDING), ("retention_from", ASCENDING)], name="retention"
                ),
            ]
        return {
            "indexes": {**dict(indexes or {}), **own},
            "outbox_collections": (*outbox_collections, self.inventory.answers_collection),
            "publishes": (*publishes, RetentionCompleted, DsrFragment),
        }

    def attach(self, runtime: ServiceRuntime) -> None:
        """Consume `retention.due` and `dsr.requested` on `runtime` (a `ServiceRuntime`), and
        `consent.changed` where the inventory holds data kept on consent (recordings)."""
        self._database = lambda: runtime.db
        self._wake = runtime.outbox_notifier(self.inventory.answers_collection)
        runtime.consume(RetentionDue, self.on_retention_due)
        runtime.consume(DsrRequested, self.on_dsr_requested)
        if self._consented:
            runtime.consume(ConsentChanged, self.on_consent_changed)

    async def on_consent_changed(self, event: Event[ConsentChanged]) -> None:
        """A caller withdrew their consent to recording (R-REC-1): the references to their
        recordings go from this service's documents of the tenant now (of the one call, if
        the withdrawal names it), not when the 30 days run out. Grants change nothing.

        The withdrawal is kept first (30 days, as the recordings), so that a call stored
        after it asks `recording_withdrawn` and keeps no recording either."""
        change = event.data
        if change.purpose is not ConsentPurpose.RECORDING or change.status is not WITHDRAWN:
            return
        kept: Document = {
            "tenant_id": change.tenant_id,
            "category": str(CONSENTED),
            "retention_from": as_utc(change.occurred_at),
            "subject": {str(change.subject.kind): change.subject.value},
            "key": subject_key(change.subject),
            "call_id": change.call_id,
        }
        await self._coll(WITHDRAWALS).update_one(
            {"_id": event.id}, {"$setOnInsert": kept}, upsert=True
        )
        for data in self.inventory.collections:
            fields = data.shorter_lived.get(CONSENTED)
            by_subject = subject_selector(data, [change.subject])
            if not fields or by_subject is None:
                continue
            named = bool(change.call_id and data.call_field)
            call = {data.call_field: change.call_id} if named else None
            present = _any_text(fields)
            chosen = _and(by_subject, {data.tenant_field: change.tenant_id}, call, present)
            coll = self._coll(data.collection)
            withdrawal = Withdrawal(change.call_id if named else None, as_utc(change.occurred_at))
            # a withdrawal covers the calls started until it (the clock of call data is the
            # call's start), or the one call it names: not a later call, recorded with
            # consent given again; checked in Python (both stored clock forms, docstring)
            shown = {data.clock_field: 1, **({data.call_field: 1} if named else {})}
            ids = [
                doc["_id"]
                async for doc in coll.find(chosen, shown)
                if withdrawal.covers(doc.get(data.call_field), _moment(doc.get(data.clock_field)))
            ]
            removed = await self._unset_by_id(coll, ids, fields)
            if removed:
                log.info(
                    "recording references removed: consent withdrawn",
                    extra={"collection": data.collection, "count": removed},
                )

    async def recording_withdrawn(
        self, tenant_id: str, caller: Iterable[SubjectId], call_id: str, started_at: datetime
    ) -> bool:
        """Whether a consent withdrawn before this service stored the call `call_id` (of
        `caller`, started at `started_at`) covers its recording (R-REC-1): the service then
        stores the call without the recording's reference."""
        keys = sorted({subject_key(i) for i in caller})
        if not self._consented or not keys:
            return False
        withdrawals = self._coll(WITHDRAWALS).find(
            # one equality per key: nx-27017 mishandles `$in` on a field other than _id in
            # writes (module docstring); a read with `$or` of equalities is exact everywhere
            {"tenant_id": tenant_id, "$or": [{"key": key} for key in keys]},
            {"call_id": 1, "retention_from": 1},
        )
        async for doc in withdrawals:
            occurred_at = _moment(doc.get("retention_from"))
            if occurred_at is None:
                continue
            if Withdrawal(doc.get("call_id"), occurred_at).covers(call_id, started_at):
                return True
        return False

    def use(self, db: MongoDatabase, wake: Callable[[], None] = lambda: None) -> None:
        """Work on `db` directly (tests, benchmarks): no runtime, no consumers."""
        self._database = lambda: db
        self._wake = wake

    @property
    def db(self) -> MongoDatabase:
        """The service's database (available once the service has started)."""
        if self._database is None:
            raise RuntimeError(f"{self.inventory.service}: retention participant not attached")
        return self._database()

    def _coll(self, name: str) -> MongoCollection:
        return self.db[name]

    # restrictions -------------------------------------------------------------------------

    async def is_restricted(
        self, tenant_id: str, identifiers: Iterable[SubjectId], *, legal_basis: str | None = None
    ) -> bool:
        """Whether the subject's data may not be processed now for `tenant_id` (R-DSR-18/21).

        A restriction stops all processing but storage; an objection stops processing on
        legitimate interest (`legal_basis=LEGITIMATE_INTEREST`). Both last until lifted.
        """
        keys = sorted({subject_key(i) for i in identifiers})
        if not keys:
            return False
        selector = _and({"keys": {"$in": keys}}, _in_force_for(tenant_id))
        cursor = self._coll(self.inventory.restrictions_collection).find(selector, {"right": 1})
        async for doc in cursor:
            if doc.get("right") == DataSubjectRight.RESTRICTION:
                return True
            if (
                doc.get("right") == DataSubjectRight.OBJECTION
                and legal_basis == LEGITIMATE_INTEREST
            ):
                return True
        return False

    async def restricted_subjects(self, tenant_id: str) -> Restricted:
        """Every subject whose processing is restricted for `tenant_id` now (R-DSR-18), for a
        service that checks many records at once (a page of notes) with one query."""
        selector = _and({"right": str(DataSubjectRight.RESTRICTION)}, _in_force_for(tenant_id))
        keys: set[str] = set()
        async for doc in self._coll(self.inventory.restrictions_collection).find(
            selector, {"keys": 1}
        ):
            keys.update(str(k) for k in doc.get("keys") or ())
        return Restricted(frozenset(keys))

    # retention.due ------------------------------------------------------------------------

    async def on_retention_due(self, event: Event[RetentionDue]) -> None:
        """Erase what the order selects (once per request id) and answer with the receipt."""
        order = event.data
        answers = self._coll(self.inventory.answers_collection)
        answer_id = f"retention:{order.request_id}"
        doc = await answers.find_one({"_id": answer_id}, {"done": 1})
        if doc is not None and doc.get("done"):
            return
        if doc is None:
            with contextlib.suppress(DuplicateKeyError):
                await answers.insert_one(
                    with_outbox(
                        {
                            "_id": answer_id,
                            "request_id": order.request_id,
                            "done": False,
                            "erased": {},
                        },
                        [],
                    )
                )
        if isinstance(order.scope, TenantScope):
            await self._forget_restrictions(order.scope.tenant_id)
        retained: list[RetainedCount] = []
        for data in self.inventory.collections:
            retained += await self._erase(data, order, answer_id)
        await self._finish_erasure(event, answer_id, retained)

    async def _count_erased(
        self, answer_id: str, data: PersonalData, category: str, n: int
    ) -> None:
        if n:
            await self._coll(self.inventory.answers_collection).update_one(
                {"_id": answer_id}, {"$inc": {f"erased.{data.collection}|{category}": n}}
            )

    async def _finish_erasure(
        self, event: Event[RetentionDue], answer_id: str, retained: list[RetainedCount]
    ) -> None:
        answers = self._coll(self.inventory.answers_collection)
        doc = await answers.find_one({"_id": answer_id}, {"erased": 1, "done": 1})
        if doc is None or doc.get("done"):
            return
        tally: dict[tuple[str, str], int] = {}
        for key, n in (doc.get("erased") or {}).items():
            collection, _, category = str(key).partition("|")
            tally[(collection, category)] = int(n)
        receipt = RetentionCompleted(
            request_id=event.data.request_id,
            service=self.inventory.service,
            erased=_counts(tally),
            retained=tuple(retained),
            completed_at=self._clock(),
        )
        answer = make_event(
            receipt,
            tenant_id=event.tenantid,
            source=self.inventory.source,
            subject=event.data.request_id,
        )
        done = await answers.find_one_and_update(
            {"_id": answer_id, "done": False},
            merge_updates({"$set": {"done": True}}, outbox_update([answer])),
            projection={"_id": 1},
            return_document=ReturnDocument.BEFORE,
        )
        if done is not None:
            self._wake()
            log.info(
                "erasure answered",
                extra={"request_id": event.data.request_id, "service_name": self.inventory.service},
            )

    async def _erase(
        self, data: PersonalData, order: RetentionDue, answer_id: str
    ) -> list[RetainedCount]:
        """Delete what `order` selects in one collection; what is kept, and why."""
        scope = order.scope
        holds = _holds_for(scope, order.holds)
        coll = self._coll(data.collection)
        if isinstance(scope, CategoryScope):
            retained = []
            fields = data.shorter_lived.get(scope.category)
            if fields:
                kept_by = _holds_for_fields(scope, order.holds)
                retained = await self._strip_due(coll, data, fields, scope, kept_by, answer_id)
            base = [
                {data.category_field: str(scope.category)},
                {data.tenant_field: scope.tenant_id} if scope.tenant_id else {},
            ]
            return retained + await self._erase_due(coll, data, base, scope, holds, answer_id)
        tombstone = None
        if isinstance(scope, SubjectScope):
            by_subject = subject_selector(data, scope.identifiers)
            if by_subject is None:
                return []
            base = [by_subject, {data.tenant_field: scope.tenant_id} if scope.tenant_id else {}]
            if not data.erase_by_subject:
                return await self._keep_all(coll, data, base)
            tombstone = data.tombstone
        else:
            base = [{data.tenant_field: scope.tenant_id}]
        return await self._erase_all(coll, data, base, holds, answer_id, tombstone)

    async def _keep_all(
        self, coll: MongoCollection, data: PersonalData, base: list[Document]
    ) -> list[RetainedCount]:
        kept: dict[str, int] = {}
        async for doc in coll.find(_and(*base), {data.category_field: 1}):
            category = str(doc.get(data.category_field))
            kept[category] = kept.get(category, 0) + 1
        return [
            RetainedCount(
                category=DataCategory(c),
                collection=data.collection,
                count=n,
                reason=data.kept_reason,
            )
            for c, n in sorted(kept.items())
            if c in _CATEGORIES
        ]

    async def _held(
        self,
        coll: MongoCollection,
        data: PersonalData,
        selections: Sequence[Document],
        holds: Sequence[LegalHold],
        verify: Callable[[Document], bool] = lambda _: True,
    ) -> tuple[list[RetainedCount], Document | None]:
        """Count what each hold keeps of `selections`; the clause that excludes all held ones."""
        retained: list[RetainedCount] = []
        earlier: list[Document] = []
        for hold in holds:
            covered = hold_selector(data, hold)
            if covered is None:
                continue
            tally: dict[str, int] = {}
            seen: set[Any] = set()
            for selection in selections:
                not_earlier = {"$nor": list(earlier)} if earlier else None
                selector = _and(selection, covered, not_earlier)
                fields = {data.category_field: 1, data.clock_field: 1}
                async for doc in coll.find(selector, fields):
                    if doc["_id"] in seen or not verify(doc):
                        continue
                    seen.add(doc["_id"])
                    category = str(doc.get(data.category_field))
                    tally[category] = tally.get(category, 0) + 1
            earlier.append(covered)
            retained += [
                RetainedCount(
                    category=DataCategory(c),
                    collection=data.collection,
                    count=n,
                    reason=f"legal hold {hold.hold_id}: {hold.reason}"[:200],
                    retained_until=hold.until,
                    hold_id=hold.hold_id,
                )
                for c, n in sorted(tally.items())
                if c in _CATEGORIES
            ]
        return retained, ({"$nor": earlier} if earlier else None)

    async def _erase_due(
        self,
        coll: MongoCollection,
        data: PersonalData,
        base: list[Document],
        scope: CategoryScope,
        holds: Sequence[LegalHold],
        answer_id: str,
    ) -> list[RetainedCount]:
        """Delete the category's documents whose clock started before the cutoff."""
        cutoff = as_utc(scope.cutoff)

        def due(doc: Document) -> bool:
            moment = _moment(doc.get(data.clock_field))
            return moment is not None and moment < cutoff

        selection = _and(*base, _clock_before(data.clock_field, cutoff))
        retained, not_held = await self._held(coll, data, [selection], holds, due)
        category = str(scope.category)
        if not_held is None:
            # The bulk on the server: a clock a whole day before the cutoff is before it in
            # either stored form (nx-27017 compares a string clock by its text, which can err
            # within a day only), and the filter has no `$in` (nx-27017 quirk 7): exact on
            # both servers. With holds, the exclusion holds `$in`s: the checked path only.
            before = {data.clock_field: {"$lt": cutoff - timedelta(days=1)}}
            bulk = await coll.delete_many(_and(*base, before))
            await self._count_erased(answer_id, data, category, bulk.deleted_count)
        chunk = self.inventory.chunk
        # The rest in one checked pass over the selection (a query per chunk would rescan it
        # each time), deleted a chunk at a time, by `_id` only (see module docstring).
        ids: list[Any] = []
        cursor = coll.find(_and(selection, not_held), {data.clock_field: 1}, batch_size=chunk)
        async for doc in cursor:
            if due(doc):
                ids.append(doc["_id"])
            if len(ids) >= chunk:
                await self._delete(coll, ids, answer_id, data, category)
                ids = []
        await self._delete(coll, ids, answer_id, data, category)
        return retained

    async def _strip_due(
        self,
        coll: MongoCollection,
        data: PersonalData,
        fields: tuple[str, ...],
        scope: CategoryScope,
        holds: Sequence[LegalHold],
        answer_id: str,
    ) -> list[RetainedCount]:
        """Remove a shorter-lived category's fields from the documents whose clock ran out
        for it (counted as erased in that category); what a hold covers keeps them."""
        cutoff = as_utc(scope.cutoff)

        def due(doc: Document) -> bool:
            moment = _moment(doc.get(data.clock_field))
            return moment is not None and moment < cutoff

        present = _any_text(fields)
        tenant = {data.tenant_field: scope.tenant_id} if scope.tenant_id else None
        selection = _and(tenant, present, _clock_before(data.clock_field, cutoff))
        retained, not_held = await self._held(coll, data, [selection], holds, due)
        cursor = coll.find(_and(selection, not_held), {data.clock_field: 1})
        ids = [doc["_id"] async for doc in cursor if due(doc)]
        stripped = await self._unset_by_id(coll, ids, fields)
        await self._count_erased(answer_id, data, str(scope.category), stripped)
        return [r.model_copy(update={"category": scope.category}) for r in retained]

    async def _unset_by_id(
        self, coll: MongoCollection, ids: Sequence[Any], fields: Iterable[str]
    ) -> int:
        """Remove `fields` from the documents `ids`, a chunk at a time, by `_id` only (see
        module docstring); how many changed."""
        removed = {"$unset": dict.fromkeys(fields, "")}
        chunk = self.inventory.chunk
        changed = 0
        for start in range(0, len(ids), chunk):
            result = await coll.update_many(
                {"_id": {"$in": list(ids[start : start + chunk])}}, removed
            )
            changed += result.modified_count
        return changed

    async def _delete(
        self,
        coll: MongoCollection,
        ids: list[Any],
        answer_id: str,
        data: PersonalData,
        category: str,
    ) -> None:
        if ids:
            result = await coll.delete_many({"_id": {"$in": ids}})
            await self._count_erased(answer_id, data, category, result.deleted_count)

    async def _erase_all(
        self,
        coll: MongoCollection,
        data: PersonalData,
        base: list[Document],
        holds: Sequence[LegalHold],
        answer_id: str,
        tombstone: Tombstone | None = None,
    ) -> list[RetainedCount]:
        """Delete every document `base` selects, but what holds or a legal duty keep (or
        turn it into its `tombstone`)."""
        selection = _and(*base)
        retained, not_held = await self._held(coll, data, [selection], holds)
        duty = _and(selection, not_held, {data.category_field: str(DataCategory.LEGAL_HOLD)})
        kept = await coll.count_documents(duty)
        if kept:
            retained.append(
                RetainedCount(
                    category=DataCategory.LEGAL_HOLD,
                    collection=data.collection,
                    count=kept,
                    reason=LEGAL_DUTY_REASON,
                )
            )
        for category in _DELETABLE:
            chosen = _and(selection, not_held, {data.category_field: category})
            if tombstone is None:
                erased = await delete_matching(coll, chosen, chunk=self.inventory.chunk)
            else:
                update = tombstone.update(self._clock())
                erased = await update_matching(coll, chosen, update, chunk=self.inventory.chunk)
            await self._count_erased(answer_id, data, category, erased)
        return retained

    async def _forget_restrictions(self, tenant_id: str) -> None:
        """A tenant's erasure takes the restrictions recorded for it along."""
        await delete_matching(
            self._coll(self.inventory.restrictions_collection), {"tenant_id": tenant_id}
        )

    # dsr.requested ------------------------------------------------------------------------

    async def on_dsr_requested(self, event: Event[DsrRequested]) -> None:
        """Answer a data-subject request once per request id (and once more for a lift)."""
        request = event.data
        phase = "lift" if request.lift else "answer"
        answers = self._coll(self.inventory.answers_collection)
        if await answers.find_one({"_id": f"dsr:{request.request_id}:{phase}:1"}, {"_id": 1}):
            return
        handlers: dict[DataSubjectRight, Callable[[DsrRequested], Awaitable[_Answer]]] = {
            DataSubjectRight.ACCESS: self._access,
            DataSubjectRight.PORTABILITY: self._access,
            DataSubjectRight.RECTIFICATION: self._rectify,
            DataSubjectRight.RESTRICTION: self._restrict,
            DataSubjectRight.OBJECTION: self._restrict,
            DataSubjectRight.ERASURE: self._erasure_elsewhere,
        }
        restrictable = (DataSubjectRight.RESTRICTION, DataSubjectRight.OBJECTION)
        if request.lift and request.right not in restrictable:
            answer = _Answer((), (), f"a {request.right} request has nothing to lift")
        else:
            answer = await handlers[request.right](request)
        await self._publish_fragments(event, phase, answer)

    async def _publish_fragments(
        self, event: Event[DsrRequested], phase: str, answer: _Answer
    ) -> None:
        request = event.data
        parts = _parts(answer.records)
        now = self._clock()
        answers = self._coll(self.inventory.answers_collection)
        # the last part first: part 1 stored means every part is (the redelivery check above)
        for number in range(len(parts), 0, -1):
            fragment = DsrFragment(
                request_id=request.request_id,
                service=self.inventory.service,
                right=request.right,
                records=tuple(parts[number - 1]),
                counts=answer.counts if number == 1 else (),
                remarks=answer.remarks if number == 1 else None,
                completed_at=now,
                lifted=request.lift,
                part=number,
                parts=len(parts),
            )
            message = make_event(
                fragment,
                tenant_id=event.tenantid,
                source=self.inventory.source,
                subject=request.request_id,
            )
            document = {
                "_id": f"dsr:{request.request_id}:{phase}:{number}",
                "request_id": request.request_id,
                "right": str(request.right),
                "answered_at": now,
                "counts": [c.model_dump(mode="json") for c in fragment.counts],
            }
            with contextlib.suppress(DuplicateKeyError):
                await answers.insert_one(with_outbox(document, [message]))
        self._wake()

    def _find(self, data: PersonalData, request: DsrRequested) -> Document | None:
        by_subject = subject_selector(data, request.identifiers)
        if by_subject is None:
            return None
        if request.tenant_id is None:
            return by_subject
        return scoped(request.tenant_id, by_subject, field=data.tenant_field)

    async def _access(self, request: DsrRequested) -> _Answer:
        """Every record about the subject, with purpose, category, recipients, end (Art. 15/20)."""
        records: list[DsrRecord] = []
        tally: dict[tuple[str, str], int] = {}
        for data in self.inventory.collections:
            selector = self._find(data, request)
            if selector is None:
                continue
            async for doc in self._coll(data.collection).find(selector, outbox_fields_excluded()):
                category = str(doc.get(data.category_field))
                if category not in _CATEGORIES:
                    continue
                clock = _moment(doc.get(data.clock_field))
                period = request.retention_periods.get(DataCategory(category))
                until = _add_period(clock, period) if clock and period else None
                content = (
                    data.export(doc, request.identifiers) if data.export else exported(doc, data)
                )
                records.append(
                    DsrRecord(
                        category=DataCategory(category),
                        collection=data.collection,
                        purpose=data.purpose[:200],
                        recipients=tuple(r[:200] for r in data.recipients),
                        retained_until=until,
                        data=content,
                    )
                )
                key = (data.collection, category)
                tally[key] = tally.get(key, 0) + 1
        remarks = None if records else "no records about the subject"
        return _Answer(tuple(records), _counts(tally), remarks)

    async def _rectify(self, request: DsrRequested) -> _Answer:
        """Apply the corrected values where this service holds them (R-DSR-16)."""
        await self._restrictions_follow(request)
        tally: dict[tuple[str, str], int] = {}
        applied: set[str] = set()
        for data in self.inventory.collections:
            changes = {
                data.rectifiable[c.field]: c.value
                for c in request.corrections
                if c.field in data.rectifiable
            }
            selector = self._find(data, request)
            if not changes or selector is None:
                continue
            coll = self._coll(data.collection)
            for category in _CATEGORIES:
                changed = await update_matching(
                    coll, _and(selector, {data.category_field: category}), {"$set": changes}
                )
                if changed:
                    tally[(data.collection, category)] = changed
            applied |= {c.field for c in request.corrections if c.field in data.rectifiable}
        ignored = sorted({c.field for c in request.corrections} - applied)
        remarks = [f"corrected: {', '.join(sorted(applied)) or 'nothing'}"]
        if ignored:
            remarks.append(f"not held here: {', '.join(ignored)}")
        if tally and self.inventory.passed_on:
            remarks.append(f"not corrected by this answer: {self.inventory.passed_on}")
        if not request.corrections:
            remarks = ["no structured corrections given; an operator applies the request's details"]
        return _Answer((), _counts(tally), "; ".join(remarks))

    async def _restrictions_follow(self, request: DsrRequested) -> None:
        """A restriction or objection in force follows its subject through a correction of
        their phone, e-mail or name: it covers the corrected identifiers too (it is often
        asked for while the data's accuracy is checked, Art. 18(1)(a))."""
        corrected = [
            subject_key(SubjectId(kind=SubjectKind(c.field), value=c.value))
            for c in request.corrections
            if c.field in {str(k) for k in SubjectKind}
        ]
        keys = sorted({subject_key(i) for i in request.identifiers})
        if not corrected or not keys:
            return
        restrictions = self._coll(self.inventory.restrictions_collection)
        in_force = {"keys": {"$in": keys}, "lifted_at": {"$exists": False}}
        async for doc in restrictions.find(in_force, {"keys": 1}):
            known = [str(k) for k in doc.get("keys") or ()]
            merged = sorted({*known, *corrected})
            if merged != sorted(known):  # by _id: nx-27017 and `$in` in writes (docstring)
                await restrictions.update_one({"_id": doc["_id"]}, {"$set": {"keys": merged}})

    async def _restrict(self, request: DsrRequested) -> _Answer:
        """Record (or lift) a restriction or objection; count the records it concerns."""
        restrictions = self._coll(self.inventory.restrictions_collection)
        if request.lift:
            await restrictions.update_one(
                {"_id": request.request_id},
                {"$set": {"lifted_at": self._clock().isoformat(), "keys": []}},
            )
            return _Answer((), (), f"{request.right} lifted: the subject's data is processed again")
        document: Document = {
            "_id": request.request_id,
            "right": str(request.right),
            "keys": sorted({subject_key(i) for i in request.identifiers}),
            "all_tenants": request.tenant_id is None,
            "recorded_at": self._clock(),
        }
        if request.tenant_id is not None:
            document["tenant_id"] = request.tenant_id
        with contextlib.suppress(DuplicateKeyError):
            await restrictions.insert_one(document)
        tally: dict[tuple[str, str], int] = {}
        for data in self.inventory.collections:
            selector = self._find(data, request)
            if selector is None:
                continue
            async for doc in self._coll(data.collection).find(selector, {data.category_field: 1}):
                category = str(doc.get(data.category_field))
                if category in _CATEGORIES:
                    key = (data.collection, category)
                    tally[key] = tally.get(key, 0) + 1
        if request.right is DataSubjectRight.RESTRICTION:
            remarks = (
                "restriction recorded (Art. 18): the data is kept but not processed until lifted"
            )
        else:
            remarks = (
                f"objection recorded (Art. 21); {self.inventory.service} processes on "
                f"{self.inventory.legal_basis}; processing on legitimate interest stops "
                "until lifted"
            )
        return _Answer((), _counts(tally), remarks)

    async def _erasure_elsewhere(self, request: DsrRequested) -> _Answer:
        return _Answer((), (), "erasure is ordered by retention.due (subject scope)")


@dataclass(frozen=True, slots=True)
class _Answer:
    records: tuple[DsrRecord, ...]
    counts: tuple[RecordCount, ...]
    remarks: str | None

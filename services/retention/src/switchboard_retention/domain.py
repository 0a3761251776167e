"""The retention service's rules: orders of a sweep, holds, request deadlines, statuses (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from switchboard_contracts.common import SubjectId
from switchboard_contracts.dsr import DataSubjectRight
from switchboard_contracts.retention import (
    CategoryScope,
    LegalHold,
    RetentionDue,
    RetentionReason,
    TenantScope,
)
from switchboard_platform.domain_errors import Conflict, Unprocessable

from .policies import POLICIES, add_months

ALL_TENANTS = "*"
"""Envelope tenant (and Kafka key) of an order or request that is not limited to one tenant."""
SOURCE = "/switchboard/retention"
DSR_MONTHS = 1
"""Art. 12(3): a request is answered within one month of receipt."""
MAX_EXTENSION_MONTHS = 2
"""... extended by two further months at most, with a reason (R-DSR-T)."""
CLOCK_SKEW = timedelta(minutes=5)
GDPR_APPLIES = datetime(2018, 5, 25, tzinfo=UTC)
"""No data-subject request under the GDPR was received before it applied (Art. 99(2))."""


class SweepStatus(StrEnum):
    """Where a sweep stands: waiting for answers, answered by all, or past its answer deadline."""

    RUNNING = "running"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"


class DsrStatus(StrEnum):
    """Where a data-subject request stands (R-DSR-T)."""

    OPEN = "open"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"


class Deadline(StrEnum):
    """How an unfinished request stands against its due date."""

    OK = "ok"
    NEAR_DUE = "near_due"
    OVERDUE = "overdue"


def new_id() -> str:
    """A fresh id for a sweep, hold or request."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """Now, to the millisecond (what MongoDB keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch: the form range queries use (nx-27017 quirk 1)."""
    return int(moment.timestamp() * 1000)


# --- holds -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hold:
    """An operator's legal hold (R-RET-5): what it keeps, why, until when."""

    id: str
    reason: str
    until: date
    tenant_id: str | None = None
    subject: SubjectId | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        if self.tenant_id is None and self.subject is None and self.category is None:
            raise Unprocessable(
                "a hold names a tenant_id, a subject or a category", field="tenant_id"
            )

    def active_on(self, day: date) -> bool:
        """Whether the hold still applies on `day`."""
        return day <= self.until

    def as_contract(self) -> LegalHold:
        """The hold as orders carry it."""
        return LegalHold.model_validate(
            {
                "hold_id": self.id,
                "reason": self.reason,
                "until": self.until,
                "tenant_id": self.tenant_id,
                "subject": self.subject,
                "category": self.category,
            }
        )

    def touches_tenant(self, tenant_id: str) -> bool:
        """Whether the hold may keep anything of `tenant_id`."""
        return self.tenant_id in (None, tenant_id)


def check_until(until: date, today: date) -> None:
    """A new hold must still be in force today."""
    if until < today:
        raise Unprocessable("a hold cannot end in the past", field="until")


# --- sweeps ------------------------------------------------------------------------------


def check_as_of(as_of: datetime, now: datetime, *, production: bool) -> None:
    """A sweep "as if it were then" in the future is for dev and test only."""
    if production and as_of > now + CLOCK_SKEW:
        raise Unprocessable("a sweep as of a future time is refused in production", field="as_of")


def category_orders(
    sweep_id: str,
    as_of: datetime,
    holds: Sequence[LegalHold],
    tenant_id: str | None = None,
) -> list[RetentionDue]:
    """One order per category: erase what its clock let run out by `as_of` (R-RET-1..5)."""
    return [
        RetentionDue(
            request_id=f"{sweep_id}:{policy.category}",
            scope=CategoryScope(
                kind="category",
                category=policy.category,
                cutoff=policy.period.before(as_of),
                tenant_id=tenant_id,
            ),
            reason=RetentionReason.RETENTION_POLICY,
            issued_at=as_of,
            holds=tuple(holds),
        )
        for policy in POLICIES
    ]


def tenant_orders(
    sweep_id: str, as_of: datetime, tenants: Iterable[str], holds: Sequence[LegalHold]
) -> list[RetentionDue]:
    """One order per offboarded tenant: everything left of it goes (R-RET-3, R-RET-4)."""
    return [
        RetentionDue(
            request_id=f"{sweep_id}:tenant:{n}",
            scope=TenantScope(kind="tenant", tenant_id=tenant),
            reason=RetentionReason.TENANT_OFFBOARDING,
            issued_at=as_of,
            holds=tuple(h for h in holds if h.tenant_id in (None, tenant)),
        )
        for n, tenant in enumerate(tenants, start=1)
    ]


def sweep_status(expected: Iterable[str], answered: Iterable[str], timed_out: bool) -> SweepStatus:
    """Completed once every (order, participant) answered; incomplete past the deadline."""
    if set(expected) <= set(answered):
        return SweepStatus.COMPLETED
    return SweepStatus.INCOMPLETE if timed_out else SweepStatus.RUNNING


def answer_key(request_id: str, service: str) -> str:
    """How an answer of `service` to order `request_id` is recorded."""
    return f"{request_id}|{service}"


# --- data-subject requests ---------------------------------------------------------------


def due_at(received_at: datetime, extension_months: int = 0) -> datetime:
    """One month after receipt, plus the extensions granted (Art. 12(3), R-DSR-T)."""
    return add_months(received_at, DSR_MONTHS + extension_months)


def check_received(received_at: datetime, now: datetime) -> None:
    """A request cannot have been received in the future, nor before the GDPR applied (a
    request entered late is backdated to its receipt, and shows overdue, as it is)."""
    if received_at > now + CLOCK_SKEW:
        raise Unprocessable("a request cannot be received in the future", field="received_at")
    if received_at < GDPR_APPLIES:
        raise Unprocessable(
            "a request cannot be received before the GDPR applied (2018-05-25)",
            field="received_at",
        )


def check_extension(
    *, status: str, extended: int, months: int, received_at: datetime, now: datetime
) -> None:
    """Up to two more months in total, decided within the first month (Art. 12(3))."""
    if status == DsrStatus.COMPLETED:
        raise Conflict("a completed request needs no extension")
    if extended + months > MAX_EXTENSION_MONTHS:
        raise Unprocessable(
            f"a request may be extended by {MAX_EXTENSION_MONTHS} months in total", field="months"
        )
    if now > due_at(received_at):
        raise Unprocessable(
            "an extension must be decided within one month of receipt", field="months"
        )


def deadline(due: datetime, now: datetime, near_days: int) -> Deadline:
    """Whether an unfinished request is overdue, or due within `near_days`."""
    if now >= due:
        return Deadline.OVERDUE
    if now >= due - timedelta(days=near_days):
        return Deadline.NEAR_DUE
    return Deadline.OK


def dsr_status(
    *,
    expected: Iterable[str],
    answered: Iterable[str],
    kept_anything: bool,
    timed_out: bool,
) -> DsrStatus:
    """Completed when every service answered (and, for erasure, nothing had to be kept)."""
    missing = set(expected) - set(answered)
    if not missing:
        return DsrStatus.PARTIALLY_COMPLETED if kept_anything else DsrStatus.COMPLETED
    if timed_out and set(answered) & set(expected):
        return DsrStatus.PARTIALLY_COMPLETED
    return DsrStatus.OPEN


RESTRICTING = (DataSubjectRight.RESTRICTION, DataSubjectRight.OBJECTION)
EXPORTING = (DataSubjectRight.ACCESS, DataSubjectRight.PORTABILITY)
CORRECTABLE = ("name", "phone", "email", "company")
"""What a rectification may correct: the subject's identifiers and company."""

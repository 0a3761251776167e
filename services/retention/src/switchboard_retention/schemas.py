"""Request and response bodies of the retention API (operators only)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.dsr import DataSubjectRight
from switchboard_platform.inputs import (
    Day,
    FreeText,
    Moment,
    check_email,
    clean_line,
    to_e164,
)
from switchboard_platform.mongo import Document, as_utc

from .domain import CORRECTABLE

TenantId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(clean_line),
]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(clean_line),
]


def _normalised(kind: str, value: str) -> str:
    if kind == SubjectKind.PHONE:
        return to_e164(value)
    if kind == SubjectKind.EMAIL:
        return check_email(value)
    text = clean_line(value.strip())
    if not 1 <= len(text) <= 200:
        raise ValueError("must be 1-200 characters")
    return text


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class SubjectIn(Input):
    """A data subject's identifier: a phone number (E.164 or German notation), e-mail or name."""

    kind: SubjectKind
    value: Annotated[str, StringConstraints(max_length=200)]

    @field_validator("value")
    @classmethod
    def _fits_kind(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        return value if kind is None else _normalised(str(kind), value)

    def contract(self) -> SubjectId:
        """As events carry it."""
        return SubjectId(kind=self.kind, value=self.value)


class CorrectionIn(Input):
    """A corrected value (R-DSR-16)."""

    field: Literal["name", "phone", "email", "company"]
    value: Annotated[str, StringConstraints(max_length=200)]

    @field_validator("value")
    @classmethod
    def _fits_field(cls, value: str, info: ValidationInfo) -> str:
        field = info.data.get("field")
        if field == "company":
            return _normalised("name", value)
        return value if field is None else _normalised(str(field), value)


class SweepCreate(Input):
    """Optional: sweep as if it were `as_of` (future times in dev and test only), one tenant."""

    as_of: Moment | None = None
    tenant_id: TenantId | None = Field(
        default=None, description="Only this tenant's data (e.g. right after its offboarding)"
    )


class HoldCreate(Input):
    """A legal hold: what it covers (at least one of tenant, subject, category), why, until."""

    tenant_id: TenantId | None = None
    subject: SubjectIn | None = None
    category: DataCategory | None = None
    reason: Reason
    until: Day

    @model_validator(mode="after")
    def _covers_something(self) -> Self:
        if self.tenant_id is None and self.subject is None and self.category is None:
            raise ValueError("a hold names a tenant_id, a subject or a category")
        return self


class DsrCreate(Input):
    """A data-subject request as received (R-DSR-15..21)."""

    right: DataSubjectRight
    identifiers: list[SubjectIn] = Field(min_length=1, max_length=10)
    tenant_id: TenantId | None = Field(default=None, description="Only this tenant's data")
    details: FreeText | None = None
    corrections: list[CorrectionIn] = Field(default_factory=list, max_length=len(CORRECTABLE))
    received_at: Moment | None = Field(
        default=None, description="When the request reached us (default: now); starts the month"
    )

    @field_validator("corrections")
    @classmethod
    def _only_for_rectification(cls, value: list[CorrectionIn], info: ValidationInfo) -> Any:
        if value and info.data.get("right") not in (None, DataSubjectRight.RECTIFICATION):
            raise ValueError("corrections belong to a rectification request")
        if len({c.field for c in value}) < len(value):
            raise ValueError("each field is corrected once")
        return value

    @model_validator(mode="after")
    def _rectification_says_what(self) -> Self:
        if self.right is DataSubjectRight.RECTIFICATION and not (self.corrections or self.details):
            raise ValueError("a rectification needs corrections or details")
        return self


class ExtensionCreate(Input):
    """One or two more months for a request, with the reason (R-DSR-T)."""

    months: Literal[1, 2]
    reason: Reason


# --- answers ---------------------------------------------------------------------------------


class PolicyPublic(BaseModel):
    """One retention rule."""

    category: DataCategory
    requirement: str = Field(examples=["R-RET-1"])
    period: str = Field(description="ISO 8601", examples=["P60D"])
    clock: str = Field(description="When the period starts")
    rule: str


class Created(BaseModel):
    """The id of what was created."""

    id: str


class Receipt(BaseModel):
    """One link of the receipt chain: who erased what (counts, ids), when (R-RET-6)."""

    seq: int
    request_id: str
    service: str
    erased: list[dict[str, Any]]
    retained: list[dict[str, Any]]
    completed_at: str
    received_at: str
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, doc: Document) -> Receipt:
        """A stored receipt."""
        return cls.model_validate({**doc, "seq": doc["_id"]})


class ReceiptPage(BaseModel):
    """Receipts in chain order; `next_after` continues the listing."""

    items: list[Receipt]
    next_after: int | None


class Verification(BaseModel):
    """The chain recomputed: valid with `count` receipts, or where and why it breaks."""

    valid: bool
    count: int
    broken_at: int | None = None
    reason: str | None = None


class MissingAnswer(BaseModel):
    """An order a participant has not answered yet."""

    request_id: str
    service: str


class SweepPublic(BaseModel):
    """A sweep, its orders and the receipts answering them."""

    id: str
    status: Literal["running", "completed", "incomplete"]
    as_of: datetime
    tenant_id: str | None
    issued_at: datetime
    requested_by: str
    orders: list[dict[str, Any]]
    holds: list[str]
    participants: list[str]
    missing: list[MissingAnswer]
    receipts: list[Receipt]

    @classmethod
    def of(cls, doc: Document) -> SweepPublic:
        """A sweep as `RetentionService.sweep` returns it."""
        return cls(
            id=doc["_id"],
            status=doc["status"],
            as_of=as_utc(doc["as_of"]),
            tenant_id=doc.get("tenant_id"),
            issued_at=as_utc(doc["issued_at"]),
            requested_by=doc["requested_by"],
            orders=doc.get("orders") or [],
            holds=doc.get("holds") or [],
            participants=doc.get("participants") or [],
            missing=[MissingAnswer(**m) for m in doc.get("missing") or []],
            receipts=[Receipt.of(r) for r in doc.get("receipts") or []],
        )


class SweepSummary(BaseModel):
    """A sweep in the list."""

    id: str
    status: str
    as_of: datetime
    tenant_id: str | None
    issued_at: datetime


class HoldPublic(BaseModel):
    """A legal hold."""

    id: str
    tenant_id: str | None
    subject: dict[str, str] | None
    category: DataCategory | None
    reason: str
    until: date
    placed_by: str
    placed_at: datetime
    lifted: bool
    lifted_by: str | None = None
    lifted_at: datetime | None = None

    @classmethod
    def of(cls, doc: Document) -> HoldPublic:
        """A stored hold."""
        lifted_at = doc.get("lifted_at")
        return cls.model_validate(
            {
                **doc,
                "id": doc["_id"],
                "placed_at": as_utc(doc["placed_at"]),
                "lifted_at": as_utc(lifted_at) if lifted_at else None,
            }
        )


class DsrCreated(BaseModel):
    """A recorded request."""

    id: str
    right: DataSubjectRight
    status: str
    received_at: datetime
    due_at: datetime


class Extension(BaseModel):
    """An extension of a request's deadline, with its reason."""

    months: int
    reason: str
    by: str
    at: datetime


class DsrPart(BaseModel):
    """One service's answer to a request."""

    service: str
    answered_at: str | None = None
    counts: list[dict[str, Any]] = []
    retained: list[dict[str, Any]] = []
    remarks: str | None = None
    records: int | None = None


class Delay(BaseModel):
    """When a request went past its deadline, and why (R-DSR-T)."""

    at: datetime
    reason: str


class DsrPublic(BaseModel):
    """A data-subject request, each service's part, its deadline and extensions."""

    id: str
    right: DataSubjectRight
    status: Literal["open", "completed", "partially_completed"]
    received_at: datetime
    due_at: datetime
    deadline: Literal["ok", "near_due", "overdue"] | None = Field(
        description="For unfinished requests: ok, near_due (within the configured days), overdue"
    )
    tenant_id: str | None
    identifiers: list[dict[str, str]]
    details: str | None
    corrections: list[dict[str, str]]
    extensions: list[Extension]
    parts: list[DsrPart]
    missing: list[str]
    overdue: Delay | None = Field(
        default=None, description="Recorded once a request passes its deadline unfinished"
    )
    lifted_at: datetime | None = None
    lift_parts: list[DsrPart] = []
    completed_at: datetime | None = None

    @classmethod
    def of(cls, doc: Document, deadline: str | None) -> DsrPublic:
        """A stored request."""
        answered = set(doc.get("answered") or [])

        def parts(key: str) -> list[DsrPart]:
            stored = doc.get(key) or {}
            return [DsrPart(service=s, **p) for s, p in sorted(stored.items())]

        optional = {k: as_utc(doc[k]) for k in ("lifted_at", "completed_at") if doc.get(k)}
        return cls(
            id=doc["_id"],
            right=doc["right"],
            status=doc["status"],
            received_at=as_utc(doc["received_at"]),
            due_at=as_utc(doc["due_at"]),
            deadline=deadline,
            tenant_id=doc.get("tenant_id"),
            identifiers=doc["identifiers"],
            details=doc.get("details"),
            corrections=doc.get("corrections") or [],
            extensions=[Extension.model_validate(e) for e in doc.get("extensions") or []],
            parts=parts("parts"),
            missing=[s for s in doc.get("participants") or [] if s not in answered],
            overdue=Delay.model_validate(doc["overdue"]) if doc.get("overdue") else None,
            lift_parts=parts("lift_parts"),
            **optional,
        )

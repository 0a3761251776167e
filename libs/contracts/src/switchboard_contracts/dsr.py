"""Payloads of `dsr.requested` and `dsr.fragment`: data-subject requests and the answers."""

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, JsonValue, StringConstraints, model_validator

from .categories import DataCategory, RecordCount
from .common import ContractModel, Identifier, Int64, LongText, ShortText, SubjectId, Timestamp
from .envelope import EventPayload
from .topics import DSR_FRAGMENT, DSR_REQUESTED


class DataSubjectRight(StrEnum):
    """The GDPR right a request invokes (R-DSR-15..21)."""

    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    PORTABILITY = "portability"
    OBJECTION = "objection"

    @property
    def article(self) -> int:
        """The GDPR article that grants this right."""
        return _ARTICLES[self]


_ARTICLES = {
    DataSubjectRight.ACCESS: 15,
    DataSubjectRight.RECTIFICATION: 16,
    DataSubjectRight.ERASURE: 17,
    DataSubjectRight.RESTRICTION: 18,
    DataSubjectRight.PORTABILITY: 20,
    DataSubjectRight.OBJECTION: 21,
}


IsoPeriod = Annotated[
    str,
    StringConstraints(pattern=r"^P([0-9]+Y)?([0-9]+M)?([0-9]+D)?$", min_length=3, max_length=20),
]
"""An ISO 8601 period of years, months and days, e.g. `P60D` or `P5Y`."""


class Correction(ContractModel):
    """One corrected value of a rectification request (R-DSR-16), applied where it is held."""

    field: Identifier = Field(
        description="What is corrected: name, phone, email or company of the subject",
        examples=["name", "email"],
    )
    value: ShortText = Field(min_length=1, examples=["Anna Schmidt-Berg"])


class DsrRequested(EventPayload):
    """A data subject invoked a right; every data-holding service must answer with a fragment."""

    topic = DSR_REQUESTED
    version = 1

    request_id: Identifier
    right: DataSubjectRight
    identifiers: tuple[SubjectId, ...] = Field(
        min_length=1, description="Everything the subject is known by: phones, e-mails, names"
    )
    tenant_id: Identifier | None = Field(
        default=None, description="Only this tenant; null means all tenants"
    )
    details: LongText | None = Field(
        default=None, description="What to rectify, restrict or object to, in the subject's words"
    )
    requested_at: Timestamp
    due_at: Timestamp = Field(description="One month after the request, or as extended (R-DSR-T)")
    corrections: tuple[Correction, ...] = Field(
        default=(), description="For rectification: the corrected values, applied by every service"
    )
    lift: bool = Field(
        default=False,
        description="For restriction and objection: the request `request_id` recorded earlier "
        "ends now; services process the subject's data again",
    )
    retention_periods: dict[DataCategory, IsoPeriod] = Field(
        default_factory=dict,
        description="ISO 8601 period each category is kept after its clock starts (the "
        "retention policy), so services can state each record's retention end (Art. 15(1)(d))",
        examples=[{"call_data": "P60D", "customer_account": "P5Y"}],
    )

    @model_validator(mode="after")
    def _due_after_request(self) -> Self:
        if self.due_at < self.requested_at:
            raise ValueError("due_at must not be before requested_at")
        return self


class DsrRecord(ContractModel):
    """One record about the subject, with what Art. 15 requires to accompany it."""

    category: DataCategory
    collection: Identifier | None = Field(
        default=None, description="Where the service keeps the record", examples=["notes"]
    )
    purpose: ShortText = Field(examples=["Forwarding call notes to the client (Art. 28)"])
    recipients: tuple[ShortText, ...] = Field(
        default=(), examples=[["Kanzlei Meyer (client)", "mail provider (EU)"]]
    )
    retained_until: Timestamp | None = Field(
        default=None, description="When the record will be erased under its retention rule"
    )
    data: dict[str, JsonValue] = Field(
        description="The record itself as structured JSON (portable, R-DSR-20)",
        examples=[{"caller": "Anna Schmidt", "concern": "Rückruf wegen Termin"}],
    )


class DsrFragment(EventPayload):
    """One service's part of the answer to a data-subject request."""

    topic = DSR_FRAGMENT
    version = 1

    request_id: Identifier
    service: Identifier = Field(examples=["notes", "notify", "crm-sync"])
    right: DataSubjectRight
    records: tuple[DsrRecord, ...] = Field(
        default=(), description="The subject's data, for access and portability requests"
    )
    counts: tuple[RecordCount, ...] = Field(
        default=(), description="Records found (or changed, for other rights) per collection"
    )
    remarks: LongText | None = Field(
        default=None, description="What the service did or could not do, and why"
    )
    completed_at: Timestamp
    lifted: bool = Field(
        default=False, description="Answers a lift: the restriction or objection has ended"
    )
    part: Int64 = Field(default=1, ge=1, description="This fragment's number, for a long answer")
    parts: Int64 = Field(default=1, ge=1, description="How many fragments the service's answer has")

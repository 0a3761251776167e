"""Payloads of `retention.due` and `retention.completed`: erasure orders and receipts (R-RET-6)."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .categories import DataCategory, RecordCount
from .common import ContractModel, Identifier, ShortText, SubjectId
from .envelope import EventPayload
from .topics import RETENTION_COMPLETED, RETENTION_DUE


class RetentionReason(StrEnum):
    """Why data is to be erased."""

    RETENTION_POLICY = "retention_policy"
    DATA_SUBJECT_REQUEST = "data_subject_request"
    TENANT_OFFBOARDING = "tenant_offboarding"


class CategoryScope(ContractModel):
    """Every record of one category whose retention clock started before the cutoff."""

    kind: Literal["category"]
    category: DataCategory
    cutoff: datetime = Field(description="Erase records whose retention clock started before this")
    tenant_id: Identifier | None = Field(
        default=None, description="Only this tenant; null means all tenants"
    )


class SubjectScope(ContractModel):
    """Everything about one data subject, found by any of their identifiers (R-DSR-17)."""

    kind: Literal["subject"]
    identifiers: tuple[SubjectId, ...] = Field(min_length=1)
    tenant_id: Identifier | None = Field(
        default=None, description="Only this tenant; null means all tenants"
    )


class TenantScope(ContractModel):
    """Everything held for one tenant, e.g. after its contract ended (R-RET-3, R-RET-4)."""

    kind: Literal["tenant"]
    tenant_id: Identifier


RetentionScope = Annotated[CategoryScope | SubjectScope | TenantScope, Field(discriminator="kind")]


class RetentionDue(EventPayload):
    """An order to every data-holding service: erase what the scope selects, then report."""

    topic = RETENTION_DUE
    version = 1

    request_id: Identifier = Field(description="Echoed in every service's retention.completed")
    scope: RetentionScope
    reason: RetentionReason
    issued_at: datetime


class RetainedCount(RecordCount):
    """Records in scope that were kept, because a legal duty overrides erasure (R-RET-5)."""

    reason: ShortText = Field(
        min_length=1,
        description="The legal duty that keeps them",
        examples=["R-RET-5: invoice, § 147 AO, 10 years"],
    )
    retained_until: date | None = None


class RetentionCompleted(EventPayload):
    """One service's erasure receipt for a retention.due request (R-RET-6: erasure is provable)."""

    topic = RETENTION_COMPLETED
    version = 1

    request_id: Identifier
    service: Identifier = Field(examples=["notes", "notify", "crm-sync"])
    erased: tuple[RecordCount, ...] = Field(
        default=(), description="Records erased, per category and collection"
    )
    retained: tuple[RetainedCount, ...] = Field(
        default=(), description="Records in scope kept under legal hold, with the reason"
    )
    completed_at: datetime

"""Payloads of `retention.due` and `retention.completed`: erasure orders and receipts (R-RET-6)."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .categories import DataCategory, RecordCount
from .common import ContractModel, Day, Identifier, ShortText, SubjectId, Timestamp
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
    cutoff: Timestamp = Field(description="Erase records whose retention clock started before this")
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


class LegalHold(ContractModel):
    """What an operator's legal hold keeps from erasure (R-RET-5): every field given must match.

    A hold without tenant, subject and category would keep everything; the retention service
    never issues one.
    """

    hold_id: Identifier
    reason: ShortText = Field(
        min_length=1,
        description="The legal duty that keeps the records",
        examples=["R-RET-5: tax audit 2025, § 147 AO"],
    )
    until: Day | None = Field(default=None, description="Last day the hold applies")
    tenant_id: Identifier | None = Field(default=None, description="Only this tenant's records")
    subject: SubjectId | None = Field(default=None, description="Only this data subject's records")
    category: DataCategory | None = Field(default=None, description="Only records of this category")


class RetentionDue(EventPayload):
    """An order to every data-holding service: erase what the scope selects, then report."""

    topic = RETENTION_DUE
    version = 1

    request_id: Identifier = Field(description="Echoed in every service's retention.completed")
    scope: RetentionScope
    reason: RetentionReason
    issued_at: Timestamp
    holds: tuple[LegalHold, ...] = Field(
        default=(),
        description="Legal holds in force: records in scope that a hold covers are kept and "
        "reported as retained with the hold's reason (R-RET-5)",
    )


class RetainedCount(RecordCount):
    """Records in scope that were kept, because a legal duty overrides erasure (R-RET-5)."""

    reason: ShortText = Field(
        min_length=1,
        description="The legal duty that keeps them",
        examples=["R-RET-5: invoice, § 147 AO, 10 years"],
    )
    retained_until: Day | None = None
    hold_id: Identifier | None = Field(
        default=None, description="The legal hold that keeps them, if an operator placed one"
    )


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
    completed_at: Timestamp

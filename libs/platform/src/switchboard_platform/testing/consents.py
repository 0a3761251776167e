"""A caller's recording consent as notify publishes it on `consent.changed` (R-REC-1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from switchboard_contracts import Event, make_event
from switchboard_contracts.common import SubjectId, SubjectKind
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentChannel,
    ConsentMethod,
    ConsentPurpose,
    ConsentStatus,
)

__all__ = ["recording_consent"]


def recording_consent(
    tenant: str,
    phone: str,
    *,
    status: ConsentStatus = ConsentStatus.WITHDRAWN,
    occurred_at: datetime | None = None,
    call_id: str | None = None,
) -> Event[ConsentChanged]:
    """The caller's recording consent given or (by default) withdrawn, in writing, at
    `occurred_at` (now); naming one call if `call_id` is given."""
    change = ConsentChanged(
        consent_id=uuid.uuid4().hex,
        tenant_id=tenant,
        subject=SubjectId(kind=SubjectKind.PHONE, value=phone),
        purpose=ConsentPurpose.RECORDING,
        channel=ConsentChannel.NONE,
        status=status,
        occurred_at=occurred_at or datetime.now(UTC),
        method=ConsentMethod.WRITTEN,
        text_version="recording-notice-de-2024-05",
        recorded_by="op-7",
        call_id=call_id,
    )
    return make_event(change, tenant_id=tenant, source="/switchboard/notify")

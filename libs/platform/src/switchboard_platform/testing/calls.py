"""A captured call as intake publishes it on `call.received`, for tests that stand in for
intake."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from switchboard_contracts import KafkaRecord, encode, make_event
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.common import Caller

__all__ = ["call_record", "received_call"]


def received_call(tenant: str, n: int = 0) -> CallReceived:
    """Call number `n` of a tenant: started `n` minutes ago (to the second), a caller and a
    concern numbered `n`."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=n)
    return CallReceived(
        call_id=uuid.uuid4().hex,
        tenant_id=tenant,
        agent_id="agent-1",
        caller=Caller(name=f"Caller {n}", phone="+4915211014450"),
        concern=f"Anliegen {n}",
        started_at=started,
        received_at=started,
    )


def call_record(call: CallReceived) -> KafkaRecord:
    """The `call.received` record of `call`, as intake's relay would produce it."""
    return encode(make_event(call, tenant_id=call.tenant_id, source="/test"))

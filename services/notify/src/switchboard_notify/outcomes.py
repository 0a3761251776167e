"""What the sender records after an attempt: the ledger's mark and the `notification.*` event.

Both go into one write of the delivery document (its outbox), right after the provider
answered, so the window in which a crash repeats a send stays one round trip long
(docs/decisions/0011). A transient failure is due again after the retry policy's delay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from switchboard_contracts import make_event
from switchboard_contracts.delivery import LegalBasis, NotificationFailed, NotificationSent
from switchboard_contracts.tenants import Channel
from switchboard_platform.mongo import Document

from .config import NotifySettings
from .domain import DeliveryStatus
from .ledger import Ledger
from .service import SOURCE
from .transport import Accepted, PermanentSendError, SendError, TransientSendError

log = logging.getLogger(__name__)
OUTCOMES = Counter(
    "switchboard_notify_deliveries_total",
    "Delivery attempts and decisions by channel and outcome",
    ["channel", "outcome"],
)


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    retry_after_cap_s: float = 3600.0,
    rand: Callable[[], float],
) -> float:
    """Seconds until the next try: capped exponential backoff with equal jitter.

    A server's `Retry-After` is a floor (never earlier than it asked), itself capped.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt - 1, 0), 60))
    delay = ceiling / 2 + rand() * ceiling / 2
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry_after_cap_s))
    return delay


class Outcomes:
    """Marks attempts in the ledger and announces them."""

    def __init__(
        self,
        ledger: Ledger,
        settings: NotifySettings,
        *,
        events_written: Callable[[], None],
        rand: Callable[[], float],
    ) -> None:
        self._ledger = ledger
        self._settings = settings
        self._events_written = events_written
        self._rand = rand

    def _fields(self, doc: Document, channel: Channel, provider: str) -> dict[str, Any]:
        region, safeguard = self._settings.provider_region(channel)
        return {
            "provider_region": region,
            "safeguard": safeguard,
            "notification_id": doc["_id"],
            "note_id": doc["note_id"],
            "tenant_id": doc["tenant_id"],
            "channel": channel,
            "recipient": doc["recipient"],
            "legal_basis": LegalBasis(doc["legal_basis"]),
            "provider": provider,
            "attempt": max(int(doc["attempts"]), 1),
            "attempted_at": datetime.now(UTC),
        }

    async def sent(self, doc: Document, channel: Channel, accepted: Accepted) -> None:
        """Mark a delivery sent, with its `notification.sent` (whatever happened meanwhile)."""
        fields = self._fields(doc, channel, accepted.provider)
        payload = NotificationSent(**fields, provider_message_id=accepted.provider_message_id)
        event = make_event(payload, tenant_id=doc["tenant_id"], source=SOURCE, subject=doc["_id"])
        marked = await self._ledger.mark(
            doc["_id"],
            doc["lease_owner"],
            {
                "status": str(DeliveryStatus.SENT),
                "provider": accepted.provider,
                "provider_region": payload.provider_region,
                "safeguard": payload.safeguard,
                "provider_message_id": accepted.provider_message_id,
                "last_error": None,
                "sent_at": payload.attempted_at,
                "updated_at": payload.attempted_at,
            },
            [event],
            only_if_pending=False,
        )
        self._events_written()
        OUTCOMES.labels(channel=str(channel), outcome="sent").inc()
        if not marked:
            log.warning("sent, but the claim had lapsed", extra={"delivery_id": doc["_id"]})

    async def failed(self, doc: Document, channel: Channel, error: SendError) -> None:
        """Schedule the next try, or mark the delivery failed; `notification.failed` either way."""
        attempt = max(int(doc["attempts"]), 1)
        retry = isinstance(error, TransientSendError) and attempt < int(doc["attempt_limit"])
        fields = self._fields(doc, channel, error.provider)
        payload = NotificationFailed(**fields, error=error.reason, will_retry=retry)
        event = make_event(payload, tenant_id=doc["tenant_id"], source=SOURCE, subject=doc["_id"])
        update: dict[str, Any] = {
            "provider": error.provider,
            "provider_region": payload.provider_region,
            "safeguard": payload.safeguard,
            "last_error": error.reason,
            "updated_at": payload.attempted_at,
        }
        if retry:
            assert isinstance(error, TransientSendError)
            s = self._settings
            delay = retry_delay(
                attempt,
                base_s=s.retry_base_s,
                cap_s=s.retry_max_s,
                retry_after_s=error.retry_after_s,
                retry_after_cap_s=s.retry_after_max_s,
                rand=self._rand,
            )
            update["due_at"] = time.time() + delay
        else:
            update["status"] = str(DeliveryStatus.FAILED)
        await self._ledger.mark(
            doc["_id"], doc["lease_owner"], update, [event], only_if_pending=True
        )
        self._events_written()
        outcome = "retry" if retry else "failed"
        OUTCOMES.labels(channel=str(channel), outcome=outcome).inc()
        kind = "permanent" if isinstance(error, PermanentSendError) else "transient"
        log.warning(
            "delivery attempt failed",
            extra={
                "delivery_id": doc["_id"],
                "attempt": attempt,
                "error_kind": kind,
                "retry": retry,
            },
        )

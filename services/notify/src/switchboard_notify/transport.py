"""What sending one message can end in, whatever the channel: accepted, or a kind of failure.

An error's `reason` names the provider, the status and the provider's error code only:
it is stored in the ledger and published in `notification.failed`, and providers' messages
quote the recipient's address or number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider accepted the message (SMTP 250, gateway 2xx)."""

    provider: str
    provider_message_id: str | None = None


class SendError(Exception):
    """Sending failed; `reason` is safe to store and publish."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(reason)
        self.provider = provider
        self.reason = reason


class TransientSendError(SendError):
    """Worth trying again later (SMTP 4xx, connection trouble, HTTP 429/5xx)."""

    def __init__(self, provider: str, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(provider, reason)
        self.retry_after_s = retry_after_s


class PermanentSendError(SendError):
    """Trying again cannot help (SMTP 5xx, HTTP 4xx): the delivery fails at once."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) in seconds; None if absent or odd."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to Python, not to float()
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)

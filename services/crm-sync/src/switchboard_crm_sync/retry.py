"""When to try again: backoff with jitter, the CRMs' own rate-limit hints, a circuit breaker.

A transfer that failed for a passing reason waits `base · 4^(attempt-1)` seconds (capped),
jittered to 50-100 % so retries of many transfers spread out; a `Retry-After` (seconds or
an HTTP date) or HubSpot's `X-HubSpot-RateLimit-*` headers set the least wait instead,
jittered upwards only. Each connector has a breaker: after `threshold` failures in a row
(5xx, timeouts) it opens for `open_s`, then lets one transfer through (half-open).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

HUBSPOT_INTERVAL = "x-hubspot-ratelimit-interval-milliseconds"
HUBSPOT_REMAINING = "x-hubspot-ratelimit-remaining"
HUBSPOT_SECONDLY_REMAINING = "x-hubspot-ratelimit-secondly-remaining"
HUBSPOT_DAILY_REMAINING = "x-hubspot-ratelimit-daily-remaining"
PIPEDRIVE_RESET = "x-ratelimit-reset"
DAILY_LIMIT_WAIT_S = 3600.0
LOCKED_WAIT_S = 2.0
MAX_VENDOR_WAIT_S = 3600.0
"""The longest a CRM's own hint may pause a transfer or its connector (its daily window)."""


def bounded_wait(seconds: float | None) -> float | None:
    """A vendor's wait, capped at `MAX_VENDOR_WAIT_S`; None if it is not a finite number
    (`Retry-After: 315360000` paused a connector for ten years, `x-ratelimit-reset: inf`
    for ever)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_VENDOR_WAIT_S)


@dataclass(frozen=True, slots=True)
class Backoff:
    """The retry schedule of failed transfers."""

    base_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, *, at_least: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 = the first)."""
        exponential = min(self.max_s, self.base_s * 4 ** max(0, attempt - 1))
        jittered: float = exponential * self.rng.uniform(0.5, 1.0)
        if at_least is None:
            return jittered
        return max(jittered, at_least * self.rng.uniform(1.0, 1.1))


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), if any."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to Python, not to float()
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _number(headers: Mapping[str, str], name: str) -> float | None:
    try:
        return float(headers[name])
    except (KeyError, ValueError):
        return None


def hubspot_wait(headers: Mapping[str, str], policy: str | None) -> float | None:
    """How long HubSpot's rate-limit headers (or 429 body's policy) say to pause, if at all.

    On a 429 of the daily policy: an hour (the window resets at the account's midnight);
    otherwise the rolling window's interval once a remaining count reached zero.
    """
    if policy == "DAILY" or _number(headers, HUBSPOT_DAILY_REMAINING) == 0:
        return DAILY_LIMIT_WAIT_S
    interval = _number(headers, HUBSPOT_INTERVAL)
    if _number(headers, HUBSPOT_SECONDLY_REMAINING) == 0:
        return 1.0
    if _number(headers, HUBSPOT_REMAINING) == 0 or policy is not None:
        return (interval or 10_000) / 1000
    return None


def pipedrive_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until Pipedrive's rate-limit window resets, if it said."""
    return _number(headers, PIPEDRIVE_RESET)


@dataclass(frozen=True, slots=True)
class Breaker:
    """The circuit breaker's rule (its state lives on the connector document)."""

    threshold: int
    open_s: float

    def opens(self, failures_in_a_row: int) -> bool:
        """Whether this many failures in a row open (or re-open) the circuit."""
        return failures_in_a_row >= self.threshold

    def allowed_in_flight(self, failures_in_a_row: int, concurrency: int) -> int:
        """Half-open after a trip: one transfer probes the CRM; closed: `concurrency`."""
        return 1 if self.opens(failures_in_a_row) else concurrency

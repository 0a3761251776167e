"""Rules shared by tenants and calls: data categories, list limits, ids, time."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from switchboard_contracts.categories import DataCategory

__all__ = [
    "EVENT_SOURCE",
    "MAX_CONTACTS",
    "MAX_ITEMS",
    "DataCategory",
    "new_id",
    "utc_now",
]

EVENT_SOURCE = "/switchboard/intake"
MAX_ITEMS = 50
"""Most entries of a list field (forwarding numbers, recipients, time windows, links)."""
MAX_CONTACTS = 200
"""Most contact persons of one tenant: an uploaded contact list may be longer than 50."""


def new_id() -> str:
    """A fresh, time-ordered id for a tenant or a call: 24 hex digits, as ObjectIds were."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def utc_now() -> datetime:
    """Now in UTC, to the millisecond: what MongoDB stores, so replies equal stored values."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

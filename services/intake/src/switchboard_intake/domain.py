"""Rules shared by tenants and calls: data categories, list limits, e-mail addresses, ids, time."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bson import ObjectId

from switchboard_contracts.categories import DataCategory
from switchboard_platform.errors import Unprocessable

__all__ = [
    "EVENT_SOURCE",
    "MAX_CONTACTS",
    "MAX_ITEMS",
    "DataCategory",
    "InvalidEmail",
    "check_email",
    "new_id",
    "utc_now",
]

EVENT_SOURCE = "/switchboard/intake"
MAX_ITEMS = 50
"""Most entries of a list field (forwarding numbers, recipients, time windows, links)."""
MAX_CONTACTS = 200
"""Most contact persons of one tenant: an uploaded contact list may be longer than 50."""

_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


class InvalidEmail(Unprocessable, ValueError):
    """Not an e-mail address; a `ValueError` too, so pydantic names the field at fault."""


def check_email(raw: str, *, field: str | None = None) -> str:
    """Return the address with its domain lower-cased, or raise InvalidEmail."""
    text = raw.strip()
    if len(text) > 200 or not _EMAIL_RE.fullmatch(text):
        raise InvalidEmail(f"not an e-mail address: {text[:200]!r}", field=field)
    local, _, host = text.rpartition("@")
    return f"{local}@{host.lower()}"


def new_id() -> str:
    """A fresh, time-ordered id for a tenant or a call."""
    return str(ObjectId())


def utc_now() -> datetime:
    """Now in UTC, to the millisecond: what MongoDB stores, so replies equal stored values."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

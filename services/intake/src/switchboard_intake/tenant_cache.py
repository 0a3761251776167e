"""A short-lived memory of which tenant owns a forwarding number (the capture hot path).

Every captured call asks who owns the dialed number; a tenant's numbers and contract change
rarely. Answers are kept `ttl_s` seconds and dropped at once when this process changes a
tenant, so another replica's change (a terminated contract) takes effect within `ttl_s`.
"""

from __future__ import annotations

import time

from .tenants import Tenant

MAX_ENTRIES = 10_000


class TenantCache:
    """Number → owning tenant, for a few seconds (an unowned number is never remembered)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Tenant | None]] = {}

    def get(self, number: str) -> tuple[bool, Tenant | None]:
        """(True, owner) while a fresh answer is kept, else (False, None)."""
        entry = self._entries.get(number)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, number: str, tenant: Tenant | None) -> None:
        """Remember the owner of `number` for `ttl_s` seconds.

        "Nobody" is not remembered: a tenant onboarded on another replica a moment ago
        must not have its first calls refused.
        """
        if self._ttl_s <= 0 or tenant is None:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[number] = (time.monotonic() + self._ttl_s, tenant)

    def clear(self) -> None:
        """Forget everything: this process changed a tenant."""
        self._entries.clear()

"""Refusing a write for a tenant the service never learned of: no I/O of its own, no HTTP.

Intake owns the tenants; notify, crm-sync and retention learn each from `tenant.changed`
and keep what they need of it. An operator names the tenant of a write by hand, so a
mistyped id would create state that belongs to no one (a legal hold that protects nothing),
and it is refused with 422 on the field that named it.
"""

from __future__ import annotations

from typing import Protocol

from .domain_errors import Unprocessable

__all__ = ["UNKNOWN_TENANT", "TenantLookup", "require_known_tenant"]

UNKNOWN_TENANT = (
    "no such tenant is known to this service (yet): it learns tenants from tenant.changed"
)
"""The message of the 422; "yet": `tenant.changed` may still be on its way."""


class TenantLookup(Protocol):
    """A store of the tenants a service learned from `tenant.changed`."""

    async def known(self, tenant_id: str) -> bool:
        """Whether the store holds the tenant."""
        ...


async def require_known_tenant(tenants: TenantLookup, tenant_id: str, *, field: str) -> None:
    """Raise `Unprocessable` naming `field` (e.g. `query.tenant_id`) unless `tenants` holds
    the tenant."""
    if not await tenants.known(tenant_id):
        raise Unprocessable(UNKNOWN_TENANT, field=field)

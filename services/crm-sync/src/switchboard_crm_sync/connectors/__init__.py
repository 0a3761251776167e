"""The connectors, one module per CRM, and the one place that builds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ..config import CrmSyncSettings
from ..credentials import CredentialsUnreadable
from ..domain import Kind
from ..mapping import FieldMapping
from ..ssrf import UrlGuard
from .base import (
    Connector,
    CrmError,
    CrmHttp,
    Deletion,
    Failure,
    RecordRef,
    UnnamedRecord,
    checked_target,
    fixed_target,
)
from .hubspot import HubSpotConnector
from .pipedrive import PipedriveConnector
from .salesforce import SalesforceConnector
from .webhook import WebhookConnector

__all__ = [
    "Connector",
    "ConnectorFactory",
    "CrmError",
    "Deletion",
    "Failure",
    "RecordRef",
    "UnnamedRecord",
]


@dataclass(frozen=True, slots=True)
class ConnectorFactory:
    """Builds a tenant's connector for one attempt, its client URL checked just before."""

    settings: CrmSyncSettings
    client: httpx.AsyncClient
    guard: UrlGuard

    async def build(
        self,
        kind: Kind,
        *,
        tenant_id: str,
        credentials: dict[str, Any],
        mapping: FieldMapping,
    ) -> Connector:
        """The connector of `kind`; CrmError(DESTINATION_REFUSED) for a refused client URL,
        CredentialsUnreadable when the stored credentials lack what the kind needs."""
        try:
            return await self._build(
                kind, tenant_id=tenant_id, credentials=credentials, mapping=mapping
            )
        except KeyError:
            raise CredentialsUnreadable("stored credentials lack a field") from None

    async def _build(
        self,
        kind: Kind,
        *,
        tenant_id: str,
        credentials: dict[str, Any],
        mapping: FieldMapping,
    ) -> Connector:
        timeout = self.settings.http_timeout_s
        if kind is Kind.HUBSPOT:
            auth = {"Authorization": f"Bearer {credentials['token']}"}
            http = CrmHttp(
                self.client,
                fixed_target(self.settings.hubspot_url),
                headers=auth,
                timeout_s=timeout,
            )
            return HubSpotConnector(http, mapping)
        if kind is Kind.SALESFORCE:
            auth = {"Authorization": f"Bearer {credentials['token']}"}
            override = self.settings.salesforce_url
            base = (
                fixed_target(override)
                if override
                else await checked_target(self.guard, credentials["instance_url"])
            )
            http = CrmHttp(self.client, base, headers=auth, timeout_s=timeout)
            return SalesforceConnector(
                http, mapping, api_version=self.settings.salesforce_api_version
            )
        if kind is Kind.PIPEDRIVE:
            auth = {"x-api-token": credentials["api_token"]}
            http = CrmHttp(
                self.client,
                fixed_target(self.settings.pipedrive_url),
                headers=auth,
                timeout_s=timeout,
            )
            return PipedriveConnector(http, mapping)
        target = await checked_target(self.guard, credentials["url"])
        http = CrmHttp(self.client, target, headers={}, timeout_s=timeout)
        return WebhookConnector(
            http, tenant_id=tenant_id, secret=credentials["secret"], custom=dict(mapping.fixed)
        )

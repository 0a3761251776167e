"""Use cases of crm-sync: configure connectors, turn note events into transfers, read the log.

Handlers and routes call these; the CRMs are called only by the transfer loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from switchboard_contracts import Event
from switchboard_contracts.delivery import outside_eu
from switchboard_contracts.notes import NoteCreated, NoteDeleted
from switchboard_contracts.tenants import TenantChanged
from switchboard_platform.domain_errors import Conflict, InvalidFields, NotFound, Unprocessable
from switchboard_platform.flows import current_trace_id
from switchboard_platform.known_tenants import require_known_tenant
from switchboard_platform.mongo import Document, as_utc

from .connector_store import ConnectorStore
from .connectors import ConnectorFactory, CrmError
from .credentials import (
    CredentialsUnreadable,
    HubSpotCredentials,
    Keyring,
    PipedriveCredentials,
    SalesforceCredentials,
    WebhookCredentials,
    new_webhook_secret,
)
from .deleted_note_store import DeletedNoteStore, Deletion
from .domain import (
    Kind,
    NoteContent,
    Operation,
    TenantProfile,
    TransferStatus,
    connector_id,
    transfer_id,
)
from .events import Attempt
from .mapping import FieldMapping, MappingRefused, check_for_kind
from .schemas import ConnectorPut, ConnectorTest
from .ssrf import HostUnresolved, UrlGuard, UrlRefused
from .tenant_store import TenantStore
from .transfer_store import TransferStore

CALL_DATA = "call_data"
SALESFORCE_DOMAINS = (".salesforce.com", ".force.com")
_CREDENTIALS: dict[Kind, type[BaseModel]] = {
    Kind.HUBSPOT: HubSpotCredentials,
    Kind.SALESFORCE: SalesforceCredentials,
    Kind.PIPEDRIVE: PipedriveCredentials,
    Kind.WEBHOOK: WebhookCredentials,
}


class TenantMismatch(ValueError):
    """The event's envelope and its payload name different tenants: refuse, never guess."""


class CrmSyncService:
    """What crm-sync does, independent of HTTP and Kafka."""

    def __init__(
        self,
        *,
        connectors: ConnectorStore,
        transfers: TransferStore,
        tenants: TenantStore,
        deleted_notes: DeletedNoteStore,
        keyring: Keyring,
        guard: UrlGuard,
        factory: ConnectorFactory,
        salesforce_override: bool,
        wake: Callable[[], None] = lambda: None,
        events_written: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connectors = connectors
        self._transfers = transfers
        self._tenants = tenants
        self._deleted = deleted_notes
        self._keyring = keyring
        self._guard = guard
        self._factory = factory
        self._salesforce_override = salesforce_override
        self._wake = wake
        self._events_written = events_written
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- connectors -------------------------------------------------------------------

    async def configure(
        self,
        tenant_id: str,
        kind: Kind,
        body: ConnectorPut,
        *,
        actor: str,
        named_by_operator: bool,
    ) -> tuple[Document, str | None]:
        """Create or change the tenant's connector; a generated webhook secret, once.

        A tenant an operator named (`query.tenant_id`) must be one crm-sync learnt from
        `tenant.changed`, else 422: a mistyped id would hold credentials for no one. A
        client's tenant comes from its signed token and is not checked: it names the
        client's own account, whose `tenant.changed` may still be on the way right after
        onboarding, when a client sets up its CRM.
        """
        if named_by_operator:
            await require_known_tenant(self._tenants, tenant_id, field="query.tenant_id")
        existing = await self._connectors.get(tenant_id, kind)
        given = body.model_fields_set
        if existing is None and body.credentials is None:
            raise Unprocessable("required for a new connector", field="body.credentials")
        if body.region is None and ("region" in given or existing is None):
            raise Unprocessable("required: EU, EEA or a country code", field="body.region")
        region = body.region or (existing or {})["region"]
        safeguard = body.safeguard if "safeguard" in given else (existing or {}).get("safeguard")
        if outside_eu(region) and safeguard is None:
            raise Unprocessable(
                "a destination outside the EU/EEA needs a safeguard: scc, adequacy or bcr "
                "(R-SEC-5)",
                field="body.safeguard",
            )
        now = self._now()
        fields: Document = {"region": region, "safeguard": safeguard, "updated_at": now}
        if body.mapping is not None:
            try:
                check_for_kind(body.mapping, kind)
            except MappingRefused as exc:
                raise Unprocessable(str(exc), field=f"body.mapping.{exc.field}") from None
            fields["mapping"] = body.mapping.model_dump(mode="json", exclude_defaults=True)
        elif existing is None:
            fields["mapping"] = {}
        if body.enabled is not None or existing is None:
            fields["enabled"] = True if body.enabled is None else body.enabled
            if fields["enabled"]:
                fields["disabled_reason"] = None
            elif existing is None or existing.get("enabled"):
                fields["disabled_reason"] = "disabled_by_client"
        if body.secrecy_opt_in is not None or existing is None:
            fields["secrecy_opt_in"] = bool(body.secrecy_opt_in)
            fields["secrecy_opt_in_by"] = actor if body.secrecy_opt_in else None
            fields["secrecy_opt_in_at"] = now if body.secrecy_opt_in else None
        secret_once = None
        if body.credentials is not None:
            values, destination, secret_once = await self._credentials(kind, body.credentials)
            fields["credentials"] = self._keyring.seal(
                values, bound_to=connector_id(tenant_id, kind)
            )
            fields["credentials_updated_at"] = now
            fields["destination"] = destination
        doc = await self._save(tenant_id, kind, existing, fields, now)
        if existing is not None and existing.get("enabled") and not doc.get("enabled"):
            await self.cancel_open(doc["_id"], "connector disabled by the client")
        self._wake()
        return doc, secret_once

    async def _save(
        self, tenant_id: str, kind: Kind, existing: Document | None, fields: Document, now: datetime
    ) -> Document:
        if existing is None and await self._connectors.create(tenant_id, kind, fields, now):
            created = await self._connectors.get(tenant_id, kind)
            assert created is not None
            return created
        doc = await self._connectors.update(
            tenant_id, kind, fields, new_credentials="credentials" in fields
        )
        if doc is None:
            raise NotFound("connector not found")  # removed meanwhile
        return doc

    async def _credentials(
        self, kind: Kind, raw: dict[str, Any]
    ) -> tuple[dict[str, Any], str, str | None]:
        """Validated credentials, the destination host, and a generated secret if any."""
        try:
            creds = _CREDENTIALS[kind].model_validate(raw)
        except ValidationError as exc:
            raise InvalidFields.of_validation(exc.errors(), under="body.credentials") from None
        values = creds.model_dump()
        generated = None
        if isinstance(creds, WebhookCredentials):
            destination = await self._checked_url(creds.url, "body.credentials.url")
            if creds.secret is None:
                generated = values["secret"] = new_webhook_secret()
            return values, destination, generated
        if isinstance(creds, SalesforceCredentials):
            destination = await self._salesforce_instance(creds.instance_url)
            return values, destination, None
        settings = self._factory.settings
        base = settings.hubspot_url if kind is Kind.HUBSPOT else settings.pipedrive_url
        return values, _host(base), None

    async def _checked_url(self, url: str, field: str) -> str:
        try:
            target = await self._guard.target(url)
        except UrlRefused as exc:
            raise Unprocessable(str(exc), field=field) from None
        except HostUnresolved:
            raise Unprocessable("host name does not resolve", field=field) from None
        return target.host

    async def _salesforce_instance(self, url: str) -> str:
        field = "body.credentials.instance_url"
        try:
            parts = self._guard.check_syntax(url)
        except UrlRefused as exc:
            raise Unprocessable(str(exc), field=field) from None
        host = (parts.hostname or "").lower()
        if not self._guard.allow_private and not host.endswith(SALESFORCE_DOMAINS):
            raise Unprocessable("must be a Salesforce instance (*.salesforce.com)", field=field)
        if self._salesforce_override:
            return _host(self._factory.settings.salesforce_url or "") or host
        return await self._checked_url(url, field)

    async def connectors(self, tenant_id: str) -> list[Document]:
        """The tenant's connectors."""
        return await self._connectors.of_tenant(tenant_id)

    async def remove(self, tenant_id: str, kind: Kind) -> None:
        """Delete the connector and erase its credentials; its open transfers are cancelled."""
        if not await self._connectors.delete(tenant_id, kind):
            raise NotFound("connector not found")
        await self.cancel_open(connector_id(tenant_id, kind), "connector removed")

    async def test(self, tenant_id: str, kind: Kind) -> ConnectorTest:
        """A harmless authenticated call to the CRM (no personal data), and its answer."""
        doc = await self._connectors.get(tenant_id, kind, with_credentials=True)
        if doc is None:
            raise NotFound("connector not found")
        try:
            credentials = self._keyring.open(doc["credentials"], bound_to=doc["_id"])
            connector = await self._factory.build(
                kind,
                tenant_id=tenant_id,
                credentials=credentials,
                mapping=FieldMapping.model_validate(doc.get("mapping") or {}),
            )
            status = await connector.test()
        except CrmError as err:
            return ConnectorTest(ok=False, status_code=err.status_code, detail=err.failure.value)
        return ConnectorTest(ok=True, status_code=status, detail="ok")

    async def reseal_credentials(self) -> tuple[int, int]:
        """Seal every connector's credentials with the newest key (after a rotation).

        Returns (re-sealed, unreadable); an unreadable one keeps its value and shows up as
        `needs_attention` (credentials_unreadable) when it is next used.
        """
        resealed = unreadable = 0
        for doc in await self._connectors.sealed():
            if self._keyring.is_current(doc["credentials"]):
                continue
            try:
                values = self._keyring.open(doc["credentials"], bound_to=doc["_id"])
            except CredentialsUnreadable:
                unreadable += 1
                continue
            sealed = self._keyring.seal(values, bound_to=doc["_id"])
            await self._connectors.reseal(
                doc["_id"], int(doc.get("credentials_version") or 1), sealed
            )
            resealed += 1
        return resealed, unreadable

    async def cancel_open(self, cid: str, reason: str) -> None:
        """Close every pending transfer of a connector, each with its log entry and event."""
        written = False
        for tid in await self._transfers.open_of_connector(cid):
            doc = await self._transfers.by_id(tid)
            if doc is None:
                continue
            attempt = _attempt_of(doc, self._now())
            closed = TransferStatus.CANCELLED
            if doc["operation"] == Operation.DELETE:
                closed = TransferStatus.NOT_DELETED
            written |= await self._transfers.close_open(
                tid,
                fields={"status": str(closed), "updated_at": attempt.at},
                entry=attempt.entry(str(closed), status_code=None, detail=reason, will_retry=False),
                events=[attempt.failed(None, reason, will_retry=False)],
                unset=("content",),
            )
        if written:
            self._events_written()

    # --- events ---------------------------------------------------------------------

    async def tenant_changed(self, event: Event[TenantChanged]) -> None:
        """Keep the tenant's secrecy and contract status, the newest profile winning."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        profile = TenantProfile(data.tenant_id, data.secrecy_bound, data.contract_status)
        await self._tenants.save(profile, event_time=event.time, now=self._now())

    async def note_created(self, event: Event[NoteCreated]) -> int:
        """One transfer per enabled connector of the tenant; how many are new."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        connectors = await self._connectors.enabled_of_tenant(data.tenant_id)
        if not connectors or await self._deleted.find(data.tenant_id, data.note_id):
            return 0  # nowhere to go, or deleted before it came (R-NOTE-2)
        note = NoteContent.of(data)
        now = self._clock()
        created = 0
        for connector in connectors:
            kind = Kind(connector["kind"])
            doc = {
                **_base(data.tenant_id, note.note_id, note.call_id, connector, Operation.SYNC),
                "_id": transfer_id(data.tenant_id, note.note_id, kind, Operation.SYNC),
                "content": note.to_document(),
                "caller_phone": note.caller_phone,
                "due_at": now,
                "created_ts": now,
                "created_at": datetime.fromtimestamp(now, UTC),
                "updated_at": datetime.fromtimestamp(now, UTC),
                "retention_from": note.started_at,
                "trace_id": current_trace_id(),  # the note_to_crm flow's exemplar
            }
            created += await self._transfers.insert_new(doc)
        if created and (deletion := await self._deleted.find(data.tenant_id, data.note_id)):
            # deleted while these were written: its handler may have looked before they were
            await self._withdraw(deletion)
            return 0
        if created:
            self._wake()
        return created

    async def note_deleted(self, event: Event[NoteDeleted]) -> None:
        """Cancel what has not left; delete (or say why not) what has (R-NOTE-2); remember
        the deletion first, so a `note.created` that comes later sends nothing."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        deletion = Deletion(
            tenant_id=data.tenant_id,
            note_id=data.note_id,
            call_id=data.call_id,
            deleted_at=as_utc(data.deleted_at),
            reason=str(data.reason),
        )
        await self._deleted.remember(deletion)
        await self._withdraw(deletion)

    async def _withdraw(self, data: Deletion) -> None:
        """Cancel the note's transfers that have not left; delete it where it has arrived."""
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        reason = "cancelled: the note was deleted before it left"
        written = False
        for sync in await self._transfers.of_note(data.tenant_id, data.note_id):
            if sync["operation"] != Operation.SYNC:
                continue
            status = sync["status"]
            if status == TransferStatus.PENDING:
                attempt = _attempt_of(sync, at)
                if await self._transfers.close_open(
                    sync["_id"],
                    fields={"status": str(TransferStatus.CANCELLED), "updated_at": at},
                    entry=attempt.entry(
                        "cancelled", status_code=None, detail=reason, will_retry=False
                    ),
                    events=[attempt.failed(None, reason, will_retry=False)],
                    unset=("content",),
                ):
                    written = True
                    continue
            elif status in (TransferStatus.REFUSED, TransferStatus.CANCELLED):
                continue
            kind = Kind(sync["connector"])
            doc = {
                **_base(data.tenant_id, data.note_id, data.call_id, sync, Operation.DELETE),
                "_id": transfer_id(data.tenant_id, data.note_id, kind, Operation.DELETE),
                "deletion": {
                    "note_id": data.note_id,
                    "call_id": data.call_id,
                    "deleted_at": data.deleted_at.astimezone(UTC).isoformat(),
                    "reason": data.reason,
                },
                "caller_phone": sync.get("caller_phone"),
                "due_at": now,
                "created_ts": now,
                "created_at": at,
                "updated_at": at,
                "retention_from": as_utc(sync["retention_from"]),
            }
            await self._transfers.insert_new(doc)
        await self._transfers.drop_content(data.tenant_id, data.note_id)
        if written:
            self._events_written()
        self._wake()

    # --- the transfer log -------------------------------------------------------------

    async def transfers_page(
        self,
        tenant_id: str,
        *,
        note_id: str | None,
        status: TransferStatus | None,
        limit: int,
        after: tuple[float, str] | None,
    ) -> tuple[list[Document], tuple[float, str] | None]:
        """A page of the log and the position after its last entry (None on the last page)."""
        docs = await self._transfers.page(
            tenant_id,
            note_id=note_id,
            status=str(status) if status else None,
            limit=limit,
            after=after,
        )
        more = len(docs) == limit
        return docs, (self._transfers.cursor_position(docs[-1]) if more else None)

    async def retry(self, tenant_id: str, tid: str, *, actor: str) -> None:
        """Make a failed or refused transfer due again (operators)."""
        doc = await self._transfers.get(tenant_id, tid)
        if doc is None:
            raise NotFound("transfer not found")
        if doc["status"] not in (TransferStatus.FAILED, TransferStatus.REFUSED):
            raise Conflict("only a failed or refused transfer can be retried")
        if doc["operation"] == Operation.SYNC and doc.get("content") is None:
            raise Conflict("the note's content is no longer held (the note was deleted)")
        at = self._now()
        entry = _attempt_of(doc, at).entry(
            "retry_requested",
            status_code=None,
            detail="retry requested by an operator",
            will_retry=True,
        )
        if not await self._transfers.reopen(
            tenant_id,
            tid,
            due_at=self._clock(),
            entry=entry,
            retry_from=int(doc.get("attempts") or 0),
        ):
            raise Conflict("only a failed or refused transfer can be retried")
        self._wake()


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _base(
    tenant_id: str, note_id: str, call_id: str, source: Document, operation: Operation
) -> Document:
    """Fields every transfer document starts with."""
    is_connector = "kind" in source
    return {
        "tenant_id": tenant_id,
        "note_id": note_id,
        "call_id": call_id,
        "connector_id": source["_id"] if is_connector else source["connector_id"],
        "connector": source["kind"] if is_connector else source["connector"],
        "operation": str(operation),
        "status": str(TransferStatus.PENDING),
        "attempts": 0,
        "destination": source.get("destination"),
        "destination_region": source.get("region") or source.get("destination_region"),
        "safeguard": source.get("safeguard"),
        "legal_basis": "contract",
        "log": [],
        "category": CALL_DATA,
    }


def _attempt_of(doc: Document, at: datetime) -> Attempt:
    return Attempt(
        transfer_id=doc["_id"],
        operation=doc["operation"],
        note_id=doc["note_id"],
        tenant_id=doc["tenant_id"],
        kind=Kind(doc["connector"]),
        destination=doc.get("destination") or "",
        region=doc.get("destination_region") or "EU",
        safeguard=doc.get("safeguard"),
        attempt=int(doc.get("attempts") or 0),
        at=at,
    )

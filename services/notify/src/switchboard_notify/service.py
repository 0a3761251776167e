"""Use cases of notify: learn tenants and notes, plan deliveries, keep the consent registry."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from switchboard_contracts import Event, make_event
from switchboard_contracts.common import Caller
from switchboard_contracts.consent import (
    ConsentChanged,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
)
from switchboard_contracts.notes import NoteCreated, NoteDeleted
from switchboard_contracts.tenants import Channel, TenantChanged
from switchboard_platform.domain_errors import Conflict, NotFound
from switchboard_platform.known_tenants import require_known_tenant
from switchboard_platform.mongo import Document, as_utc

from .consents import ConsentRecord, Declaration, current_record, onboarding_consent
from .domain import (
    RESTRICTED,
    DeliveryStatus,
    NoteCopy,
    Recipient,
    Restricted,
    TenantMismatch,
    TenantProfile,
    caller_ids,
    never_restricted,
    plan_deliveries,
)
from .ledger import Ledger, from_epoch_ms
from .registry import ConsentRegistry
from .repository import NotesRepository, TenantsRepository

log = logging.getLogger(__name__)

SOURCE = "/switchboard/notify"
Clock = Callable[[], datetime]
_DELIVERY_CHANNELS = {ConsentChannel.EMAIL: Channel.EMAIL, ConsentChannel.SMS: Channel.SMS}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings the use cases follow."""

    notice_version: str
    attempt_limit: int
    id_domain: str


@dataclass(frozen=True, slots=True)
class RecipientState:
    """A recipient of the tenant and its current consent for notifications."""

    recipient: Recipient
    consent: ConsentRecord | None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """What a client asks of the ledger."""

    tenant_id: str
    note_id: str | None = None
    status: DeliveryStatus | None = None
    limit: int = 50
    after: tuple[datetime, str] | None = None


def consent_event(record: ConsentRecord) -> Event[ConsentChanged]:
    """The `consent.changed` event announcing `record`."""
    return make_event(
        record.to_payload(), tenant_id=record.tenant_id, source=SOURCE, subject=record.consent_id
    )


class NotifyService:
    """What notify does, independent of HTTP and Kafka; sending is the sender's."""

    def __init__(
        self,
        tenants: TenantsRepository,
        notes: NotesRepository,
        ledger: Ledger,
        registry: ConsentRegistry,
        *,
        policy: Policy,
        events_written: Callable[[], None] = lambda: None,
        deliveries_due: Callable[[], None] = lambda: None,
        clock: Clock = _utcnow,
        restricted: Restricted = never_restricted,
    ) -> None:
        self._tenants = tenants
        self._notes = notes
        self._ledger = ledger
        self._registry = registry
        self._policy = policy
        self._events_written = events_written
        self._deliveries_due = deliveries_due
        self._clock = clock
        self._restricted = restricted

    async def learn_tenant(self, event: Event[TenantChanged]) -> None:
        """Keep the tenant's profile; record the onboarding consent of each recipient the
        client newly names (R-CON-2).

        Only a recipient the stored profile did not list yet: one already listed either
        has that record, or had it erased on their own request (R-DSR-17), and a later
        change of the tenant must not grant in their name what they withdrew. The consents
        are recorded before the profile is saved, so a redelivery after a crash in between
        still finds the recipients new.

        An event older than the stored profile changes nothing (a redelivery, or a producer
        replaying history): it would bring back a terminated contract or a removed
        recipient, and grant that recipient consent. A tenant's events share a partition,
        so one worker applies them in order.
        """
        profile = TenantProfile.from_event(event)
        previous = await self._tenants.get(profile.tenant_id, fresh=True)
        if previous is not None and previous.changed_at > profile.changed_at:
            log.info(
                "older tenant.changed ignored",
                extra={"tenant_id": profile.tenant_id, "event_id": event.id},
            )
            return
        listed = (
            set() if previous is None else {(r.channel, r.address) for r in previous.recipients}
        )
        recorded = False
        for recipient in profile.recipients:
            if not recipient.valid or (recipient.channel, recipient.address) in listed:
                continue
            record = onboarding_consent(
                profile,
                recipient,
                notice_version=self._policy.notice_version,
                recorded_at=self._clock(),
            )
            recorded |= await self._registry.record(record, [consent_event(record)])
        if recorded:
            self._events_written()
        await self._tenants.save(profile)
        for note in await self._notes.unplanned(profile.tenant_id):
            await self._plan(note, profile, mark=True)

    async def record_note(self, event: Event[NoteCreated]) -> None:
        """Plan one delivery per recipient of a new note; a redelivered note changes nothing.

        The copy is stored first, marked planned when the tenant is known, then the
        deliveries are written (ids derived from note and recipient). A crash between the
        two is healed by the redelivery, which writes the deliveries again (the ones that
        exist stay as they are); a deleted note's tombstone keeps a late `note.created` out.
        """
        note = NoteCopy.from_event(event)
        caller = note.caller  # asked about before planning (R-DSR-18), even where not stored
        tenant = await self._tenants.get(note.tenant_id)
        if tenant is not None and tenant.secrecy_bound:
            note = note.without_content()  # never stored: the messages do not need it (R-SEC-3)
        if not await self._notes.insert_new(note, self._clock(), planned=tenant is not None):
            state = await self._notes.state(note.tenant_id, note.note_id)
            if state is None or "deleted_at" in state or not state.get("planned"):
                return  # deleted, or waiting for its tenant (learn_tenant plans it)
            stored = await self._notes.get_live(note.tenant_id, note.note_id)
            if stored is None or tenant is None:
                return
            await self._plan(stored, tenant, mark=False, caller=caller)
            return
        if tenant is not None:
            await self._plan(note, tenant, mark=False, caller=caller)
            return
        # read again after storing: a tenant learnt meanwhile plans this note, or we do
        tenant = await self._tenants.get(note.tenant_id)
        if tenant is not None:
            await self._plan(note, tenant, mark=True, caller=caller)

    async def _plan(
        self, note: NoteCopy, tenant: TenantProfile, *, mark: bool, caller: Caller | None = None
    ) -> None:
        """Write the note's deliveries; suppressed at once if its caller restricted processing.

        The sender asks again before each send; this first check covers secrecy-bound
        tenants, whose copies keep no caller to ask about (R-SEC-3, R-DSR-18).
        """
        now = self._clock()
        deliveries = plan_deliveries(
            note,
            tenant,
            now=now,
            attempt_limit=self._policy.attempt_limit,
            id_domain=self._policy.id_domain,
        )
        who = caller_ids(caller or note.caller)
        if deliveries and who and await self._restricted(note.tenant_id, who):
            deliveries = [
                replace(d, status=DeliveryStatus.SUPPRESSED, reason=RESTRICTED)
                if d.status is DeliveryStatus.PENDING
                else d
                for d in deliveries
            ]
        if await self._ledger.insert_planned(deliveries, due_at=now.timestamp()):
            self._deliveries_due()
        if mark:
            await self._notes.mark_planned(note, forget_content=tenant.secrecy_bound)

    async def forget_note(self, event: Event[NoteDeleted]) -> None:
        """A deleted note is not sent any more, and its copy loses its content."""
        data = event.data
        if data.tenant_id != event.tenantid:
            raise TenantMismatch("payload tenant_id differs from the event's tenantid")
        await self._notes.tombstone(data.tenant_id, data.note_id, as_utc(data.deleted_at))
        await self._ledger.cancel_for_note(data.tenant_id, data.note_id, self._clock())

    async def store_consent(self, event: Event[ConsentChanged]) -> None:
        """Keep another service's (or our own, returning) consent record in the registry."""
        record = ConsentRecord.from_event(event, recorded_at=self._clock())
        if await self._registry.record(record, []):
            await self._apply_withdrawal(record)

    async def declare_consent(
        self, declaration: Declaration, *, named_by_operator: bool
    ) -> ConsentRecord:
        """Record a consent or withdrawal given over the API and announce it.

        A tenant an operator named (`body.tenant_id`) must be one notify learnt from
        `tenant.changed`, else 422: a mistyped id would record consent for no one. A
        client's tenant comes from its signed token, names the client's own account, and is
        not checked: its `tenant.changed` may still be on the way right after onboarding,
        and what the client records is for its own recipients once the profile arrives.
        """
        if named_by_operator:
            await require_known_tenant(self._tenants, declaration.tenant_id, field="body.tenant_id")
        record = declaration.to_record(consent_id=str(uuid.uuid4()), now=self._clock())
        await self._registry.record(record, [consent_event(record)])
        self._events_written()
        await self._apply_withdrawal(record)
        return record

    async def _apply_withdrawal(self, record: ConsentRecord) -> None:
        channel = _DELIVERY_CHANNELS.get(record.channel)
        if record.status is not ConsentStatus.WITHDRAWN or channel is None:
            return
        await self._ledger.suppress_for_subject(
            record.tenant_id, record.subject.value, channel, record.purpose, self._clock()
        )

    async def recipients(self, tenant_id: str) -> list[RecipientState]:
        """The tenant's recipients, each with its current consent for notifications."""
        tenant = await self._tenants.get(tenant_id)
        if tenant is None:
            return []
        records = await self._registry.of_subjects(
            tenant_id, [r.address for r in tenant.recipients]
        )
        now = self._clock()
        states = []
        for recipient in tenant.recipients:
            own = [
                r
                for r in records
                if r.subject.value == recipient.address
                and r.purpose is ConsentPurpose.NOTIFICATION
                and _DELIVERY_CHANNELS.get(r.channel) is recipient.channel
            ]
            states.append(RecipientState(recipient, current_record(own, now)))
        return states

    async def consent_history(self, tenant_id: str, subject: str) -> list[ConsentRecord]:
        """Every record of the subject in the tenant's context, oldest first (R-CON-3)."""
        return await self._registry.history(tenant_id, subject)

    async def deliveries(
        self, query: DeliveryFilter
    ) -> tuple[list[Document], tuple[datetime, str] | None]:
        """A page of ledger entries and the position after it (None on the last page)."""
        if (
            query.note_id is not None
            and await self._notes.state(query.tenant_id, query.note_id) is None
        ):
            raise NotFound("note not found")
        docs = await self._ledger.page(
            query.tenant_id,
            note_id=query.note_id,
            status=query.status,
            limit=query.limit,
            after=query.after,
        )
        more = len(docs) == query.limit
        last = docs[-1] if docs else None
        position = (
            (from_epoch_ms(int(last["created_ms"])), str(last["_id"])) if more and last else None
        )
        return docs, position

    async def retry(self, delivery_id: str) -> Document:
        """Try a failed delivery again, with a fresh budget of attempts."""
        now = self._clock()
        reopened = await self._ledger.reopen(
            delivery_id,
            extra_attempts=self._policy.attempt_limit,
            now=now,
            due_at=now.timestamp(),
        )
        if reopened is None:
            if await self._ledger.get(delivery_id) is None:
                raise NotFound("delivery not found")
            raise Conflict("only a failed delivery can be retried")
        self._deliveries_due()
        return reopened

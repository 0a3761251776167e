"""Use cases: create a tenant, change a tenant, capture a call.

Each stores its change and the event announcing it in one single-document write (the
transactional outbox), then wakes the relay that publishes the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from switchboard_contracts.notes import NoteDeleted
from switchboard_platform.errors import Conflict, NotFound, Unprocessable
from switchboard_platform.subjects import RecordingWithdrawn, never_withdrawn, subject_ids

from . import calls, tenants
from .calls import Call, CallDetails
from .domain import new_id, utc_now
from .repository import CALLS, TENANTS, IntakeRepository, NumberTaken
from .tenant_cache import TenantCache
from .tenants import Tenant, TenantProfile

log = logging.getLogger(__name__)

MAX_UPDATE_ATTEMPTS = 5


class IntakeService:
    """The intake use cases over one repository."""

    def __init__(
        self,
        repository: IntakeRepository,
        *,
        events_written: Callable[..., None],
        recording_notice_version: str,
        clock: Callable[[], datetime] = utc_now,
        idempotency_ttl: timedelta = timedelta(hours=24),
        tenant_cache_s: float = 5.0,
        recording_withdrawn: RecordingWithdrawn = never_withdrawn,
    ) -> None:
        self._repository = repository
        self._recording_withdrawn = recording_withdrawn
        self._events_written = events_written
        self._notice_version = recording_notice_version
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._owners = TenantCache(tenant_cache_s)

    async def create_tenant(self, profile: TenantProfile) -> Tenant:
        """Onboard a tenant (R-ONB-1) and publish `tenant.changed` ("created")."""
        now = self._clock()
        profile = tenants.settle(profile, now.date())
        tenant = Tenant(new_id(), profile, created_at=now, updated_at=now)
        await self._refuse_taken_numbers(tenant)
        event = tenants.changed_event(tenant.tenant_id, profile, "created")
        await self._repository.insert_tenant(tenant, [event])
        self._owners.clear()
        self._events_written(TENANTS)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant:
        """The tenant with this id, or NotFound."""
        tenant = await self._repository.find_tenant(tenant_id)
        if tenant is None:
            raise NotFound("tenant not found")
        return tenant

    async def change_tenant(self, tenant_id: str, changes: Mapping[str, Any]) -> Tenant:
        """Apply a partial update and publish `tenant.changed` ("updated") if anything changed."""
        for _ in range(MAX_UPDATE_ATTEMPTS):
            current = await self.get_tenant(tenant_id)
            now = self._clock()
            profile = tenants.settle(tenants.merge(current.profile, changes), now.date())
            if profile == current.profile:
                return current
            tenant = Tenant(tenant_id, profile, current.created_at, now, current.version + 1)
            await self._refuse_taken_numbers(tenant)
            event = tenants.changed_event(tenant_id, profile, "updated")
            if await self._repository.update_tenant(tenant, current.version, [event]):
                self._owners.clear()
                self._events_written(TENANTS)
                return tenant
        raise Conflict("the tenant is being changed concurrently; try again")

    async def capture_call(
        self,
        details: CallDetails,
        *,
        tenant_id: str | None,
        dialed_number: str | None,
        agent_id: str,
        idempotency_key: str | None = None,
    ) -> Call:
        """Record a call for its tenant (R-CALL-1, R-CALL-2) and publish `call.received`.

        A retry of the same request with the same `idempotency_key` by the same agent answers
        with the call recorded first and records nothing new (a lost 201 must not make a
        second note); the key used for another request is refused. Keys last a day.
        """
        received_at = self._clock()
        retry = None
        if idempotency_key is not None:
            request = {
                "details": details.model_dump(mode="json"),
                "tenant_id": tenant_id,
                "dialed_number": dialed_number,
            }
            retry = calls.retry_key(
                agent_id, idempotency_key, request, received_at, self._idempotency_ttl
            )
            if (first := await self._earlier_call(retry, received_at)) is not None:
                return first
        calls.check_details(details, received_at)
        tenant = await self._attribute(tenant_id, dialed_number)
        call = Call(
            **details.model_dump(),
            call_id=new_id(),
            tenant_id=tenant.tenant_id,
            agent_id=agent_id,
            dialed_number=dialed_number,
            received_at=received_at,
        )
        if await self._withdrawn(call):  # R-REC-1: withdrawn before the call was captured
            call = calls.without_recording(call)
        events = [calls.received_event(call), *calls.consent_events(call, self._notice_version)]
        stored = await self._repository.insert_call(call, events, retry)
        if stored is None:  # the same key won a race meanwhile
            assert retry is not None
            first = await self._earlier_call(retry, received_at)
            if first is None:
                raise Conflict("the Idempotency-Key is in use; try again")
            return first
        self._events_written(CALLS)
        if await self._withdrawn(call):  # kept between the check and the insert
            await self._repository.drop_recording(call.tenant_id, call.call_id)
            call = calls.without_recording(call)
        return call

    async def _withdrawn(self, call: Call) -> bool:
        if call.recording is None or not call.recording.url:
            return False
        caller = subject_ids(
            phone=call.caller.phone, email=call.caller.email, name=call.caller.name
        )
        return await self._recording_withdrawn(
            call.tenant_id, caller, call.call_id, call.started_at
        )

    async def forget_call(self, deletion: NoteDeleted) -> None:
        """The client deleted the call's note: the call record keeps no copy (R-NOTE-2)."""
        forgotten = await self._repository.forget_call(
            deletion.tenant_id, deletion.call_id, deletion.deleted_at
        )
        if forgotten:
            log.info("call forgotten: its note was deleted", extra={"call_id": deletion.call_id})

    async def _earlier_call(self, retry: calls.RetryKey, now: datetime) -> Call | None:
        """The call stored under this retry key, if it is still valid; frees an expired key."""
        stored = await self._repository.call_by_retry_key(retry.key)
        if stored is None:
            return None
        if stored.expires_at is not None and stored.expires_at <= now:
            await self._repository.release_retry_key(retry.key)
            return None
        return calls.check_retry(stored, retry)

    async def _attribute(self, tenant_id: str | None, dialed_number: str | None) -> Tenant:
        """The tenant a call belongs to: the owner of the dialed number, else the one named."""
        if dialed_number is not None:
            field, tenant = "dialed_number", await self._owner_of(dialed_number)
            if tenant is None:
                raise Unprocessable(f"no tenant owns {dialed_number}", field=field)
            if tenant_id is not None and tenant_id != tenant.tenant_id:
                raise Unprocessable(
                    "the dialed number belongs to another tenant", field="tenant_id"
                )
        elif tenant_id is not None:
            field, tenant = "tenant_id", await self._repository.find_tenant(tenant_id)
            if tenant is None:
                raise Unprocessable("unknown tenant", field=field)
        else:
            raise Unprocessable("give tenant_id or the dialed_number called", field="tenant_id")
        calls.check_accepts_calls(tenant.profile.contract_status, field)
        return tenant

    async def _owner_of(self, number: str) -> Tenant | None:
        """The tenant owning a forwarding number; remembered a few seconds (the hot path)."""
        hit, tenant = self._owners.get(number)
        if not hit:
            tenant = await self._repository.tenant_owning(number)
            self._owners.put(number, tenant)
        return tenant

    async def _refuse_taken_numbers(self, tenant: Tenant) -> None:
        # A friendly early answer; the unique index decides when two requests race.
        numbers = tenant.profile.forwarding_numbers
        taken = await self._repository.numbers_owned_elsewhere(numbers, tenant.tenant_id)
        if taken:
            raise NumberTaken(taken)

"""The background sender: claims due ledger entries, checks them again, sends, marks.

Kafka handlers only write the ledger; this loop does the sending, so a slow or failing
provider never holds up a partition (another tenant's notes). Each claimed delivery is
checked at the moment of sending — note still there, contract running, recipient still
instructed, consent granted (R-CON-1/2), its caller's processing not restricted (R-DSR-18) —
then sent, then marked with its outcome and the
`notification.*` event in one write (R-API-2). Transient failures come back after a capped
exponential backoff with jitter (never earlier than a `Retry-After`); permanent ones fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from switchboard_contracts.consent import ConsentPurpose
from switchboard_contracts.tenants import Channel
from switchboard_platform.background import stop_requested, stop_task
from switchboard_platform.flows import NOTE_TO_EMAIL, NOTE_TO_SMS, observe_flow
from switchboard_platform.health import Health
from switchboard_platform.mongo import Document

from .batch import Circumstances, circumstances
from .config import NotifySettings
from .consents import consent_channel
from .domain import (
    DeliveryStatus,
    NoteCopy,
    Restricted,
    TenantProfile,
    Verdict,
    decide,
    never_restricted,
)
from .email_message import MailComposer, note_link
from .ledger import Ledger
from .outcomes import OUTCOMES, Outcomes
from .registry import ConsentRegistry
from .repository import NotesRepository, TenantsRepository
from .sms_gateways import SmsGateway
from .sms_message import compose_sms
from .smtp import SmtpMailer
from .transport import Accepted, SendError, TransientSendError

log = logging.getLogger(__name__)
COMPONENT = "sender"
SEND_SHARE_OF_LEASE = 0.8  # of NOTIFY_SEND_LEASE_S: a send's deadline, slot wait included


class Sender:
    """Sends due deliveries, at most `NOTIFY_SENDER_CONCURRENCY` at a time."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        notes: NotesRepository,
        tenants: TenantsRepository,
        registry: ConsentRegistry,
        mailer: SmtpMailer,
        sms: SmsGateway,
        settings: NotifySettings,
        health: Health,
        events_written: Callable[[], None],
        rand: Callable[[], float] = random.random,
        restricted: Restricted = never_restricted,
    ) -> None:
        self._ledger, self._notes, self._tenants = ledger, notes, tenants
        self._restricted = restricted  # R-DSR-18: asked for each note's caller before sending
        self._registry, self._mailer, self._sms = registry, mailer, sms
        self._settings = settings
        self._health = health
        self._outcomes = Outcomes(ledger, settings, events_written=events_written, rand=rand)
        self._composer = MailComposer(
            mail_from=settings.mail_from,
            link_template=settings.note_link_template,
            unsubscribe_to=settings.envelope_from,
        )
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New deliveries are due: look now rather than at the next poll."""
        self._wakeup.set()

    @property
    def running(self) -> bool:
        """Whether the loop is alive (a readiness probe)."""
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        """Start the loop: it first takes back this replica's unfinished claims of an earlier
        life (waiting for the database if it is away: the service stays up, not ready)."""
        self._loop_task = asyncio.create_task(self._release_then_run(), name="notify-sender")

    async def _release_then_run(self) -> None:
        backoff = 0.1
        while True:
            try:
                released = await self._ledger.release_instance(self._settings.instance)
                break
            except Exception as exc:  # the database is away (e.g. at start): keep trying
                backoff = await self._database_away(exc, "release earlier claims", backoff)
        if released:
            log.warning("claims of a previous run released", extra={"count": released})
        await self._run()

    async def _database_away(self, exc: Exception, what: str, backoff: float) -> float:
        """Report the loop stalled, wait `backoff`; the next, longer wait (at most 5 s)."""
        if stop_requested():
            raise asyncio.CancelledError from exc
        self._health.stall(COMPONENT, type(exc).__name__)
        log.warning("could not %s; retrying", what, exc_info=True)
        await asyncio.sleep(backoff)
        return min(backoff * 2, 5.0)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, let in-flight sends finish (their claims lapse if they cannot)."""
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is None:
            return
        await stop_task(loop_task)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace_s)
        for task in self._inflight:
            task.cancel()
        await self._mailer.close()
        await self._sms.close()

    async def _run(self) -> None:
        backoff = 0.1
        concurrency = self._settings.sender_concurrency
        batch = max(1, concurrency // 2)
        while True:
            self._wakeup.clear()  # before claiming: a wake-up during the claim is kept
            free = concurrency - len(self._inflight)
            claimed: list[Document] = []
            # claim in batches (half the slots, or all when idle): a claim costs round trips
            if free >= batch or not self._inflight:
                try:
                    claimed = await self._ledger.claim_due(
                        time.time(),
                        free,
                        owner=uuid.uuid4().hex,
                        instance=self._settings.instance,
                        lease_s=self._settings.send_lease_s,
                    )
                    known = await circumstances(
                        claimed,
                        tenants=self._tenants,
                        notes=self._notes,
                        registry=self._registry,
                        restricted=self._restricted,
                    )
                except Exception as exc:  # the database is away: keep trying, report not ready
                    # (entries claimed meanwhile come back when their claim lapses)
                    backoff = await self._database_away(exc, "claim deliveries", backoff)
                    continue
                backoff = 0.1
                self._health.recover(COMPONENT)
                for doc in claimed:
                    task = asyncio.create_task(self._deliver(doc, known))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # a full batch: more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._settings.sender_poll_s)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wakeup.set()

    async def _deliver(self, doc: Document, known: Circumstances) -> None:
        try:
            await self._attempt(doc, known)
        except Exception:  # e.g. the database went away mid-way: the claim lapses, it comes back
            log.exception("delivery attempt broke off", extra={"delivery_id": doc["_id"]})

    async def _attempt(self, doc: Document, known: Circumstances) -> None:
        tenant_id, note_id = doc["tenant_id"], doc["note_id"]
        channel, purpose = Channel(doc["channel"]), ConsentPurpose(doc["purpose"])
        now = datetime.now(UTC)
        tenant, note = known.tenant(tenant_id), known.note(tenant_id, note_id)
        consent = known.consent(tenant_id, doc["recipient"], purpose, consent_channel(channel), now)
        decision = decide(
            channel=channel,
            recipient=doc["recipient"],
            purpose=purpose,
            tenant=tenant,
            note=note,
            consent=consent,
            restricted=known.is_restricted(tenant_id, note_id),
        )
        if decision.verdict is not Verdict.SEND or tenant is None or note is None:
            status = (
                DeliveryStatus.SUPPRESSED
                if decision.verdict is Verdict.SUPPRESS
                else DeliveryStatus.CANCELLED
            )
            await self._ledger.close(
                doc["_id"], doc["lease_owner"], status, decision.reason or "", now
            )
            OUTCOMES.labels(channel=str(channel), outcome=str(status)).inc()
            log.info("delivery %s", status, extra={"delivery_id": doc["_id"], "note_id": note_id})
            return
        try:
            # the outcome must be written while the claim holds: a send that outlasted it
            # could be claimed and sent again by this or another replica meanwhile
            async with asyncio.timeout(self._settings.send_lease_s * SEND_SHARE_OF_LEASE):
                accepted = await self._send(doc, channel, note, tenant, purpose, now)
        except SendError as error:
            await self._outcomes.failed(doc, channel, error)
            return
        except TimeoutError:
            provider = self._provider(channel)
            late = TransientSendError(provider, f"{provider} send ran out of its claim's time")
            await self._outcomes.failed(doc, channel, late)
            return
        except Exception as exc:  # a fault of ours, or an answer no transport foresaw: counted
            # as a failed attempt, so the attempt limit ends it (left to the claim's expiry,
            # it was sent again and again, never counted)
            log.exception("send failed unexpectedly", extra={"delivery_id": doc["_id"]})
            provider = self._provider(channel)
            reason = f"{provider} internal error ({type(exc).__name__})"
            await self._outcomes.failed(doc, channel, TransientSendError(provider, reason))
            return
        if note.created_at is not None:  # the provider accepted it: the flow ends here
            flow = NOTE_TO_EMAIL if channel is Channel.EMAIL else NOTE_TO_SMS
            observe_flow(flow, note.created_at, trace_id=note.trace_id)
        await self._outcomes.sent(doc, channel, accepted)

    def _provider(self, channel: Channel) -> str:
        return self._mailer.provider if channel is Channel.EMAIL else self._sms.provider

    async def _send(
        self,
        doc: Document,
        channel: Channel,
        note: NoteCopy,
        tenant: TenantProfile,
        purpose: ConsentPurpose,
        now: datetime,
    ) -> Accepted:
        if channel is Channel.EMAIL:
            message = self._composer.compose(
                note,
                secret=tenant.secrecy_bound,
                to=doc["recipient"],
                message_id=doc["message_id"],
                purpose=purpose,
                now=now,
            )
            return await self._mailer.send(message, doc["recipient"])
        link = note_link(self._settings.note_link_template, note)
        text = compose_sms(note, secret=tenant.secrecy_bound, link=link)
        return await self._sms.send(doc["recipient"], text)

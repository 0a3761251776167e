"""E-mail over SMTP with aiosmtplib: a few reused connections, TLS whenever the server offers it.

`NOTIFY_SMTP_TLS=starttls` requires STARTTLS and a verified certificate, `tls` connects with
implicit TLS (verified), and `none` requires nothing but still upgrades with STARTTLS when
the server offers it (opportunistic, unverified: it protects against passive eavesdropping,
which is "encrypted in transit where technically possible", R-NOTE-1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from email.message import Message

import aiosmtplib

from .config import NotifySettings, SmtpTls
from .transport import Accepted, PermanentSendError, TransientSendError

log = logging.getLogger(__name__)

PROVIDER = "smtp"
IDLE_CHECK_S = 5.0
"""A connection idle for longer is checked with NOOP before it carries a message."""
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")


def _reason(code: int, message: str) -> str:
    enhanced = _ENHANCED.match(message or "")
    return f"smtp {code}" + (f" {enhanced.group(1)}" if enhanced else "")


def classify(exc: BaseException) -> TransientSendError | PermanentSendError:
    """SMTP 5xx is permanent; 4xx, unreadable replies and connection trouble are transient.

    Authentication and TLS negotiation failures are ours to fix, not the recipient's: they
    are retried (within the attempt limit) rather than failing every delivery at once.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return classify(aiosmtplib.SMTPResponseException(first.code, first.message))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TransientSendError(PROVIDER, f"smtp authentication failed ({exc.code})")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = _reason(exc.code, exc.message)
        if 500 <= exc.code < 600:
            return PermanentSendError(PROVIDER, reason)
        # 4xx, and what is no SMTP reply at all (aiosmtplib's -1 for an unreadable or
        # oversized line, a code outside 2xx-5xx): a misconfigured or broken server, retried
        return TransientSendError(PROVIDER, reason)
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or (
        type(exc) is aiosmtplib.SMTPException and "starttls" in str(exc).lower()
    ):
        return TransientSendError(PROVIDER, "smtp server offers no STARTTLS, which is required")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientSendError(PROVIDER, "smtp timeout")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        return TransientSendError(PROVIDER, f"smtp connection failed ({type(exc).__name__})")
    return TransientSendError(PROVIDER, f"smtp error ({type(exc).__name__})")


class SmtpMailer:
    """Sends messages over at most `NOTIFY_SMTP_CONNECTIONS` connections, kept open between."""

    provider = PROVIDER

    def __init__(self, settings: NotifySettings) -> None:
        self._settings = settings
        self._envelope_from = settings.envelope_from
        self._slots = asyncio.Semaphore(settings.smtp_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self._settings
        mode = s.smtp_tls
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_s,
            use_tls=mode is SmtpTls.TLS,
            # True: required; None: used when offered (opportunistic); False: implicit TLS
            start_tls={SmtpTls.STARTTLS: True, SmtpTls.NONE: None}.get(mode, False),
            validate_certs=mode is not SmtpTls.NONE,
            cert_bundle=s.smtp_ca_file,
        )

    async def _take(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, since = self._idle.pop()
            if not client.is_connected:
                continue
            if time.monotonic() - since > IDLE_CHECK_S:
                try:
                    await client.noop()
                except aiosmtplib.SMTPException:
                    client.close()
                    continue
            return client
        client = self._new_client()
        await client.connect()
        return client

    async def send(self, message: Message, recipient: str) -> Accepted:
        """Hand `message` to the server for `recipient`; raise a SendError otherwise."""
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._take()
                await client.send_message(
                    message, sender=self._envelope_from, recipients=[recipient]
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    client.close()
                raise classify(exc) from None
            except asyncio.CancelledError:  # the sender's deadline: the session is unusable
                if client is not None:
                    client.close()
                raise
            self._idle.append((client, time.monotonic()))
        return Accepted(PROVIDER, str(message["Message-ID"]))

    def uses_tls(self) -> bool:
        """Whether an open connection is encrypted (for tests and diagnostics)."""
        return any(c.get_transport_info("sslcontext") is not None for c, _ in self._idle)

    async def close(self) -> None:
        """Say goodbye on every open connection."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(client.quit(), 2.0)
            client.close()

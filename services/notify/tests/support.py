"""Real servers for notify's tests: an SMTP server (aiosmtpd) and an SMS gateway speaking
Twilio's and sipgate's shapes (Starlette under uvicorn), each in a thread; plus event helpers.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import ipaddress
import ssl
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchboard_contracts import Event, EventPayload, encode, make_event
from switchboard_contracts.common import Caller
from switchboard_contracts.notes import DeletionReason, NoteCreated, NoteDeleted
from switchboard_contracts.tenants import (
    Channel,
    ContractStatus,
    Industry,
    Recipient,
    TenantChanged,
)
from switchboard_platform.embedded import free_port
from switchboard_platform.testing.kafka import produce

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-test-token"
SIPGATE_TOKEN_ID = "token-4711"
SIPGATE_TOKEN = "sipgate-test-token"


# --- TLS -----------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notify-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    """The server side of TLS with that certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Received:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    at: float

    @property
    def message_id(self) -> str:
        """The Message-ID header, read without parsing the whole message."""
        head = self.data.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                return line.split(b":", 1)[1].strip().decode()
        return ""

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        parsed: EmailMessage = email.message_from_bytes(self.data, policy=default_policy)  # type: ignore[assignment]
        return parsed

    def text(self) -> str:
        """The plain text part."""
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    def html(self) -> str:
        """The HTML part."""
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps what it accepts; `script` answers chosen DATA commands.

    `script[rcpt]` holds replies (e.g. "451 4.3.0 Try again later") used, one per attempt,
    before the message to `rcpt` is accepted.
    """

    messages: list[Received] = field(default_factory=list)
    script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    attempt_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    on_message: Callable[[Received], None] | None = None
    slow: dict[str, float] = field(default_factory=dict)
    """Seconds to wait before answering RCPT and again DATA for a recipient, once."""

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        """Accept the recipient, after the delay `slow` asks for."""
        delay = self.slow.get(address.lower(), 0.0)
        if delay:
            await asyncio.sleep(delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Accept (250) or answer what the script says."""
        rcpt = envelope.rcpt_tos[0].lower()
        if delay := self.slow.pop(rcpt, 0.0):
            await asyncio.sleep(delay)
        self.attempts[rcpt] += 1
        self.attempt_times[rcpt].append(time.monotonic())
        if self.script[rcpt]:
            return self.script[rcpt].popleft()
        received = Received(
            envelope.mail_from,
            [r.lower() for r in envelope.rcpt_tos],
            bytes(envelope.original_content or envelope.content),
            session.ssl is not None,
            time.monotonic(),
        )
        self.messages.append(received)
        if self.on_message is not None:
            self.on_message(received)
        return "250 OK queued"

    def to(self, address: str) -> list[Received]:
        """Every message accepted for `address`."""
        return [m for m in self.messages if address.lower() in m.rcpt_tos]


class SmtpServer:
    """aiosmtpd on a free port in a thread; STARTTLS offered when given a TLS context."""

    def __init__(
        self,
        sink: SmtpSink,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit: ssl.SSLContext | None = None,
    ) -> None:
        self.sink = sink
        self.port = free_port()
        kwargs: dict[str, Any] = {"tls_context": starttls} if starttls else {}
        if implicit is not None:
            kwargs["ssl_context"] = implicit
        self._controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=self.port,
            data_size_limit=10_000_000,
            ready_timeout=10,
            **kwargs,
        )

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


# --- SMS gateway ---------------------------------------------------------------------------


@dataclass
class GatewayRequest:
    """One request the gateway received."""

    vendor: str
    path: str
    auth: tuple[str, str] | None
    fields: dict[str, Any]
    at: float


@dataclass
class GatewayReply:
    """A scripted answer: status, JSON body, headers."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def twilio_error(status: int, code: int, message: str, **headers: str) -> GatewayReply:
    """An error answer in Twilio's shape."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return GatewayReply(status, body, dict(headers))


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


class SmsGatewayServer:
    """Twilio's Messages API and sipgate's SMS API on one local port (uvicorn in a thread)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[GatewayRequest] = []
        self.script: dict[str, deque[GatewayReply]] = defaultdict(deque)
        app = Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", self._twilio, methods=["POST"]),
                Route("/v2/sessions/sms", self._sipgate, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        """Base URL for NOTIFY_SMS_URL."""
        return f"http://127.0.0.1:{self.port}"

    def to(self, number: str) -> list[GatewayRequest]:
        """Every request for `number`."""
        return [
            r for r in self.requests if number in (r.fields.get("To"), r.fields.get("recipient"))
        ]

    async def _twilio(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        auth = _basic(request)
        self.requests.append(
            GatewayRequest("twilio", request.url.path, auth, form, time.monotonic())
        )
        if auth != (TWILIO_SID, TWILIO_TOKEN) or request.path_params["sid"] != TWILIO_SID:
            reply = twilio_error(401, 20003, "Authenticate")
            return JSONResponse(reply.body, reply.status)
        scripted = self.script[str(form.get("To"))]
        if scripted:
            reply = scripted.popleft()
            return JSONResponse(reply.body, reply.status, headers=reply.headers)
        body = {
            "sid": f"SM{uuid.uuid4().hex}",
            "account_sid": TWILIO_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
        }
        return JSONResponse(body, 201)

    async def _sipgate(self, request: Request) -> Response:
        body = await request.json()
        auth = _basic(request)
        self.requests.append(
            GatewayRequest("sipgate", request.url.path, auth, body, time.monotonic())
        )
        if auth != (SIPGATE_TOKEN_ID, SIPGATE_TOKEN):
            return Response(status_code=401)
        scripted = self.script[str(body.get("recipient"))]
        if scripted:
            reply = scripted.popleft()
            return JSONResponse(reply.body, reply.status, headers=reply.headers)
        return Response(status_code=204)

    def __enter__(self) -> SmsGatewayServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


# --- events --------------------------------------------------------------------------------


def new_tenant() -> str:
    """A tenant id of this test alone."""
    return f"t-{uuid.uuid4().hex[:10]}"


def address(tenant: str, name: str = "buero") -> str:
    """An e-mail address of this test alone."""
    return f"{name}.{tenant}@kanzlei.example"


def tenant_changed(
    tenant: str,
    recipients: Iterable[tuple[Channel, str, str | None]],
    *,
    industry: Industry = Industry.OTHER,
    status: ContractStatus = ContractStatus.ACTIVE,
) -> Event[TenantChanged]:
    """A `tenant.changed` as intake publishes it."""
    payload = TenantChanged(
        tenant_id=tenant,
        change="created",
        name=f"Kanzlei {tenant}",
        industry=industry,
        secrecy_bound=industry.secrecy_bound,
        contract_status=status,
        contract_terminated_on=dt.date.today() if status is ContractStatus.TERMINATED else None,
        recipients=tuple(
            Recipient(channel=c, address=a, contact_person=p) for c, a, p in recipients
        ),
    )
    return make_event(payload, tenant_id=tenant, source="/switchboard/intake")


CALLER = Caller(name="Erika Mustermann", phone="+4915211014450", company="ACME GmbH")
CONCERN = "Bittet um Rückruf wegen der Steuererklärung 2024"


def note_created(
    tenant: str,
    *,
    started_at: dt.datetime | None = None,
    caller: Caller = CALLER,
    concern: str = CONCERN,
    contact_person: str | None = "Frau Meyer",
    note_id: str | None = None,
) -> Event[NoteCreated]:
    """A `note.created` as the notes service publishes it."""
    started = started_at or dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
    payload = NoteCreated(
        note_id=note_id or str(uuid.uuid4()),
        call_id=uuid.uuid4().hex,
        tenant_id=tenant,
        agent_id="agent-7",
        caller=caller,
        concern=concern,
        contact_person=contact_person,
        started_at=started,
        duration_seconds=95,
        created_at=started + dt.timedelta(minutes=2),
    )
    return make_event(
        payload, tenant_id=tenant, source="/switchboard/notes", subject=payload.note_id
    )


def note_deleted(tenant: str, note_id: str) -> Event[NoteDeleted]:
    """A `note.deleted` as the notes service publishes it."""
    payload = NoteDeleted(
        note_id=note_id,
        call_id="c",
        tenant_id=tenant,
        deleted_at=dt.datetime.now(dt.UTC),
        deleted_by="client-user",
        reason=DeletionReason.CLIENT_REQUEST,
    )
    return make_event(payload, tenant_id=tenant, source="/switchboard/notes", subject=note_id)


async def publish(bootstrap: str, *events: Event[Any]) -> None:
    """Put events on their topics, in order."""
    await produce(bootstrap, [encode(e) for e in events])


async def eventually(
    check: Callable[[], Any], *, timeout_s: float = 15.0, interval_s: float = 0.05
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval_s)


def payloads(events: Iterable[Event[EventPayload]]) -> list[Any]:
    """The payloads of events."""
    return [e.data for e in events]

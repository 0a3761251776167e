"""SMTP and SMS transports against real servers: TLS modes, the vendors' request shapes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from switchboard_notify.config import NotifySettings, SmsProviderName, SmtpTls
from switchboard_notify.sms_gateways import SipgateGateway, TwilioGateway
from switchboard_notify.smtp import SmtpMailer
from switchboard_notify.transport import PermanentSendError, TransientSendError

from ..support import (
    SIPGATE_TOKEN,
    SIPGATE_TOKEN_ID,
    TWILIO_SID,
    TWILIO_TOKEN,
    GatewayReply,
    SmsGatewayServer,
    SmtpServer,
    SmtpSink,
    server_tls,
)


def _settings(**values: Any) -> NotifySettings:
    return NotifySettings(environment="test", smtp_timeout_s=3.0, sms_timeout_s=3.0, **values)


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "notiz@example.de"
    message["To"] = to
    message["Subject"] = "Test"
    message["Message-ID"] = f"<{dt.datetime.now().timestamp()}@example.de>"
    message.set_content("Hallo")
    return message


async def _send(settings: NotifySettings, to: str = "a@example.de") -> SmtpMailer:
    mailer = SmtpMailer(settings)
    try:
        await mailer.send(_message(to), to)
    finally:
        await mailer.close()
    return mailer


@pytest.mark.parametrize("mode", [SmtpTls.STARTTLS, SmtpTls.NONE])
async def test_r_note_1_starttls_is_used_when_offered(
    tls_files: tuple[Path, Path], mode: SmtpTls
) -> None:
    sink = SmtpSink()
    with SmtpServer(sink, starttls=server_tls(*tls_files)) as server:
        extra = {"smtp_ca_file": str(tls_files[0])} if mode is SmtpTls.STARTTLS else {}
        await _send(_settings(smtp_port=server.port, smtp_tls=mode, **extra))
    [received] = sink.messages
    assert received.tls


async def test_r_note_1_implicit_tls_is_verified(tls_files: tuple[Path, Path]) -> None:
    sink = SmtpSink()
    with SmtpServer(sink, implicit=server_tls(*tls_files)) as server:
        await _send(
            _settings(smtp_port=server.port, smtp_tls=SmtpTls.TLS, smtp_ca_file=str(tls_files[0]))
        )
        with pytest.raises(TransientSendError):  # an unknown certificate is refused
            await _send(_settings(smtp_port=server.port, smtp_tls=SmtpTls.TLS))
    assert len(sink.messages) == 1


async def test_without_tls_on_offer_mail_goes_plain_unless_starttls_is_required() -> None:
    sink = SmtpSink()
    with SmtpServer(sink) as server:
        await _send(_settings(smtp_port=server.port, smtp_tls=SmtpTls.NONE))
        with pytest.raises(TransientSendError) as refused:
            await _send(_settings(smtp_port=server.port, smtp_tls=SmtpTls.STARTTLS))
    assert [m.tls for m in sink.messages] == [False]
    assert "STARTTLS" in refused.value.reason


async def test_smtp_connections_are_reused_and_codes_classified() -> None:
    sink = SmtpSink()
    sink.script["busy@example.de"] = deque(["451 4.3.0 busy"])
    sink.script["gone@example.de"] = deque(["550 5.1.1 <gone@example.de> unknown"])
    with SmtpServer(sink) as server:
        mailer = SmtpMailer(_settings(smtp_port=server.port, smtp_tls=SmtpTls.NONE))
        await mailer.send(_message("a@example.de"), "a@example.de")
        await mailer.send(_message("b@example.de"), "b@example.de")
        with pytest.raises(TransientSendError):
            await mailer.send(_message("busy@example.de"), "busy@example.de")
        with pytest.raises(PermanentSendError) as gone:
            await mailer.send(_message("gone@example.de"), "gone@example.de")
        await mailer.send(_message("busy@example.de"), "busy@example.de")
        await mailer.close()
    assert gone.value.reason == "smtp 550 5.1.1"
    assert [m.rcpt_tos for m in sink.messages] == [
        ["a@example.de"],
        ["b@example.de"],
        ["busy@example.de"],
    ]
    refused = SmtpMailer(_settings(smtp_port=server.port, smtp_tls=SmtpTls.NONE))
    with pytest.raises(TransientSendError):  # the server is gone: connection refused
        await refused.send(_message("a@example.de"), "a@example.de")


async def test_sipgate_gets_its_json_shape_with_token_basic_auth() -> None:
    with SmsGatewayServer() as gateway:
        sipgate = SipgateGateway(
            _settings(
                sms_provider=SmsProviderName.SIPGATE,
                sms_url=gateway.url,
                sms_username=SIPGATE_TOKEN_ID,
                sms_password=SIPGATE_TOKEN,
                sms_from="s0",
            )
        )
        accepted = await sipgate.send("+4915112345678", "Neuer Anruf")
        gateway.script["+4915112345679"] = deque([GatewayReply(402)])
        with pytest.raises(PermanentSendError) as broke:
            await sipgate.send("+4915112345679", "Neuer Anruf")
        gateway.script["+4915112345679"] = deque([GatewayReply(500)])
        with pytest.raises(TransientSendError):
            await sipgate.send("+4915112345679", "Neuer Anruf")
        await sipgate.close()
    [request, *_] = gateway.requests
    assert (request.vendor, request.path) == ("sipgate", "/v2/sessions/sms")
    assert request.auth == (SIPGATE_TOKEN_ID, SIPGATE_TOKEN)
    assert request.fields == {
        "smsId": "s0",
        "recipient": "+4915112345678",
        "message": "Neuer Anruf",
    }
    assert (accepted.provider, accepted.provider_message_id) == ("sipgate", None)
    assert broke.value.reason == "sipgate http 402"


async def test_twilio_messaging_service_sid_and_missing_credentials() -> None:
    with SmsGatewayServer() as gateway:
        twilio = TwilioGateway(
            _settings(
                sms_url=gateway.url,
                sms_username=TWILIO_SID,
                sms_password=TWILIO_TOKEN,
                sms_from="MG0123456789abcdef0123456789abcdef",
            )
        )
        accepted = await twilio.send("+4915112345678", "Hallo")
        await twilio.close()
        unconfigured = TwilioGateway(_settings(sms_url=gateway.url))
        with pytest.raises(TransientSendError) as missing:
            await unconfigured.send("+4915112345678", "Hallo")
        await unconfigured.close()
    [request] = gateway.requests
    assert request.fields["MessagingServiceSid"] == "MG0123456789abcdef0123456789abcdef"
    assert "From" not in request.fields
    assert str(accepted.provider_message_id).startswith("SM")
    assert missing.value.reason == "twilio credentials not configured"


class _RawGateway:
    """An HTTP server that answers each request with scripted raw bytes, then maybe stalls."""

    def __init__(self, head: bytes, body: bytes, *, stall: bool = False) -> None:
        self.head, self.body, self.stall = head, body, stall
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        self.requests += 1
        writer.write(self.head + self.body)
        await writer.drain()
        if self.stall:
            await asyncio.sleep(30)
        writer.close()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def _twilio_at(url: str) -> TwilioGateway:
    settings = _settings(sms_url=url, sms_username=TWILIO_SID, sms_password=TWILIO_TOKEN)
    settings.sms_timeout_s = 1.0
    return TwilioGateway(settings)


@pytest.mark.parametrize(
    ("body", "stall"),
    [
        (b'[{"sid": "SM1"}]', False),  # JSON, but no object: AttributeError, sent for ever
        (b"null", False),
        (b'{"sid": "SM1"', True),  # the status line came, then the body stalled: sent twice
    ],
    ids=["a list", "null", "a stalled body"],
)
async def test_r_note_1_an_sms_gateways_2xx_is_accepted_once_whatever_its_body_does(
    body: bytes, stall: bool
) -> None:
    length = len(body) + (100 if stall else 0)
    head = f"HTTP/1.1 201 Created\r\nContent-Length: {length}\r\n\r\n".encode()
    gateway = _RawGateway(head, body, stall=stall)
    async with gateway as url:
        twilio = _twilio_at(url)
        try:
            accepted = await twilio.send("+4915112345678", "Hallo")
        finally:
            await twilio.close()
    assert (accepted.provider, accepted.provider_message_id, gateway.requests) == (
        "twilio",
        None,
        1,
    )


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_sms_credentials_are_transient_not_every_sms_failed(status: int) -> None:
    """A rotated or expired token is ours to fix, as SMTP authentication is."""
    body = b'{"code": 20003, "message": "Authenticate"}'
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    async with _RawGateway(head, body) as url:
        twilio = _twilio_at(url)
        try:
            with pytest.raises(TransientSendError) as refused:
                await twilio.send("+4915112345678", "Hallo")
        finally:
            await twilio.close()
    assert refused.value.reason == f"twilio http {status} code 20003"

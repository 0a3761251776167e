"""Fixtures of the notify tests: real SMTP and SMS gateway servers, and a running notify app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard_notify.config import NotifySettings
from switchboard_notify.main import create_app
from switchboard_platform.testing.apps import running_app
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.settings import service_settings

from .support import (
    TWILIO_SID,
    TWILIO_TOKEN,
    SmsGatewayServer,
    SmtpServer,
    SmtpSink,
    self_signed,
    server_tls,
)

MAIL_FROM = "Telefonservice <notiz@switchboard.example>"
SMS_FROM = "+4915199999999"
LINK = "https://portal.switchboard.example/notes/{note_id}"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def smtp(tls_files: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """An SMTP server offering STARTTLS, for this test module."""
    with SmtpServer(SmtpSink(), starttls=server_tls(*tls_files)) as server:
        yield server


@pytest.fixture(scope="module")
def gateway() -> Iterator[SmsGatewayServer]:
    """An SMS gateway speaking Twilio's and sipgate's APIs, for this test module."""
    with SmsGatewayServer() as server:
        yield server


def notify_settings(
    servers: ServerEndpoints,
    smtp: SmtpServer,
    gateway: SmsGatewayServer,
    tls_files: tuple[Path, Path],
    **overrides: Any,
) -> NotifySettings:
    """Settings of a notify app on the session's servers, a fresh database and group prefix."""
    run = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_consumer_group_prefix": f"notify-{run}",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_tls": "starttls",
        "smtp_ca_file": str(tls_files[0]),
        "smtp_timeout_s": 5.0,
        "mail_from": MAIL_FROM,
        "sms_provider": "twilio",
        "sms_url": gateway.url,
        "sms_username": TWILIO_SID,
        "sms_password": TWILIO_TOKEN,
        "sms_from": SMS_FROM,
        "sms_timeout_s": 5.0,
        "sms_safeguard": "scc",  # Twilio processes in the US (R-SEC-5)
        "note_link_template": LINK,
        "retry_base_s": 0.2,
        "retry_max_s": 1.0,
        "sender_poll_s": 0.05,
        "send_lease_s": 10.0,
        "sender_instance": f"test-{run}",
        **overrides,
    }
    return service_settings(NotifySettings, servers, f"notify_{run}", **values)


@pytest.fixture(scope="module")
def settings(
    servers: ServerEndpoints,
    smtp: SmtpServer,
    gateway: SmsGatewayServer,
    tls_files: tuple[Path, Path],
) -> NotifySettings:
    """This module's notify settings."""
    return notify_settings(servers, smtp, gateway, tls_files)


@pytest.fixture(scope="module")
async def notify(settings: NotifySettings) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of a started notify app (consumers, relay and sender running)."""
    async with running_app(create_app(settings)) as client:
        yield client

"""notify's dev sinks keep what they receive under .data/ and say where; the runner wires them."""

from __future__ import annotations

import json
import smtplib
import sys
from email.message import EmailMessage
from pathlib import Path

import httpx

from switchboard_dev.infra import Endpoints
from switchboard_dev.runner import service_child
from switchboard_dev.services import Service
from switchboard_dev.sinks import DEV_SMS_ACCOUNT, dev_sinks
from switchboard_platform.embedded import free_port


def test_mail_and_sms_sinks_keep_what_they_receive_and_say_where(tmp_path: Path) -> None:
    said: list[str] = []
    with dev_sinks({}, tmp_path, said.append, smtp_port=free_port(), sms_port=free_port()) as env:
        message = EmailMessage()
        message["From"], message["To"] = "notify@localhost", "buero@meyer.example"
        message["Subject"] = "Anruf von Erika Mustermann"
        message.set_content("Bitte Rückruf.")
        with smtplib.SMTP(env["NOTIFY_SMTP_HOST"], int(env["NOTIFY_SMTP_PORT"]), timeout=5) as smtp:
            smtp.send_message(message)
        reply = httpx.post(
            f"{env['NOTIFY_SMS_URL']}/2010-04-01/Accounts/{DEV_SMS_ACCOUNT}/Messages.json",
            data={"To": "+4915112345678", "From": env["NOTIFY_SMS_FROM"], "Body": "Anruf"},
            auth=(env["NOTIFY_SMS_USERNAME"], env["NOTIFY_SMS_PASSWORD"]),
        )
        wrong = httpx.post(f"{env['NOTIFY_SMS_URL']}/v2/sessions/sms", json={})
    assert env["NOTIFY_SMTP_TLS"] == "none"
    assert env["NOTIFY_SMS_PROVIDER"] == "twilio"
    [mail] = list((tmp_path / "mail").glob("*.eml"))
    assert b"Anruf von Erika Mustermann" in mail.read_bytes()
    assert reply.status_code == 201
    assert reply.json()["sid"].startswith("SM")
    assert wrong.status_code == 404
    [kept] = (tmp_path / "sms" / "messages.jsonl").read_text().splitlines()
    assert json.loads(kept)["To"] == "+4915112345678"
    assert any(str(tmp_path / "mail") in line for line in said)
    assert any(f"mail     received: {mail}" == line for line in said)
    assert any(str(tmp_path / "sms" / "messages.jsonl") in line for line in said)


def test_sinks_are_not_started_when_notify_is_pointed_elsewhere(tmp_path: Path) -> None:
    configured = {"NOTIFY_SMTP_HOST": "smtp.example.de", "NOTIFY_SMS_URL": "https://api.twilio.com"}
    said: list[str] = []
    with dev_sinks(configured, tmp_path, said.append, smtp_port=1, sms_port=1) as env:
        assert env == {}
    assert said == ["Mail     from NOTIFY_SMTP_HOST", "SMS      from NOTIFY_SMS_URL"]
    assert not (tmp_path / "mail").exists()


def test_a_taken_port_falls_back_to_a_free_one(tmp_path: Path) -> None:
    said: list[str] = []
    with (
        dev_sinks({}, tmp_path, said.append, smtp_port=free_port(), sms_port=free_port()) as first,
        dev_sinks(
            {},
            tmp_path,
            said.append,
            smtp_port=int(first["NOTIFY_SMTP_PORT"]),
            sms_port=int(first["NOTIFY_SMS_URL"].rsplit(":", 1)[1]),
        ) as second,
    ):
        assert second["NOTIFY_SMTP_PORT"] != first["NOTIFY_SMTP_PORT"]
        assert second["NOTIFY_SMS_URL"] != first["NOTIFY_SMS_URL"]
    assert any("in use" in line for line in said)


def test_only_notify_gets_the_sink_variables() -> None:
    endpoints = Endpoints("127.0.0.1:1", "mongodb://127.0.0.1:2", {"NOTIFY_SMTP_PORT": "2525"})
    notify = service_child(Service("notify", "switchboard_notify", 8003), endpoints, {})
    notes = service_child(Service("notes", "switchboard_notes", 8002), endpoints, {})
    own = service_child(
        Service("notify", "switchboard_notify", 8003), endpoints, {"NOTIFY_SMTP_PORT": "25"}
    )
    assert notify.env is not None
    assert notify.env["NOTIFY_SMTP_PORT"] == "2525"
    assert notify.argv == (sys.executable, "-m", "switchboard_notify")
    assert notes.env is not None
    assert "NOTIFY_SMTP_PORT" not in notes.env
    assert own.env is not None
    assert own.env["NOTIFY_SMTP_PORT"] == "25"

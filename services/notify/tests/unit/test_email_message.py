"""The e-mail of a note: German MIME, autoescaped HTML, stable ids, no secrets for R-SEC-3."""

from __future__ import annotations

import datetime as dt
import email
from email.message import EmailMessage, Message
from email.policy import default

from switchboard_contracts.common import Caller
from switchboard_contracts.consent import ConsentPurpose
from switchboard_notify.domain import NoteCopy
from switchboard_notify.email_message import MailComposer

COMPOSER = MailComposer(
    mail_from="Telefonservice <notiz@example.de>",
    link_template="https://portal.example.de/notes/{note_id}?t={tenant_id}",
    unsubscribe_to="notiz@example.de",
)
NOW = dt.datetime(2025, 7, 1, 8, 5, tzinfo=dt.UTC)


def _note(**changes: object) -> NoteCopy:
    values: dict[str, object] = {
        "note_id": "n 1/2",
        "tenant_id": "kanzlei-meyer",
        "call_id": "c",
        "caller": Caller(
            name="<b>Erika</b> & Co", phone="+4915211014450", email="erika@example.de"
        ),
        "concern": "Rückruf wegen <script>alert(1)</script>",
        "contact_person": "Frau Meyer",
        "started_at": dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC),
        "duration_seconds": 95,
    }
    values.update(changes)
    return NoteCopy(**values)  # type: ignore[arg-type]


def _round_trip(message: Message) -> EmailMessage:
    parsed: EmailMessage = email.message_from_bytes(message.as_bytes(), policy=default)  # type: ignore[assignment]
    return parsed


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())  # type: ignore[attr-defined]


def test_r_note_1_mail_is_german_mime_with_plain_and_autoescaped_html() -> None:
    message = _round_trip(
        COMPOSER.compose(
            _note(),
            secret=False,
            to="buero@example.de",
            message_id="<d-1@example.de>",
            purpose=ConsentPurpose.NOTIFICATION,
            now=NOW,
        )
    )
    assert message["Subject"] == "Anruf von <b>Erika</b> & Co für Frau Meyer"
    assert message["Message-ID"] == "<d-1@example.de>"
    assert message["Date"] == "Tue, 01 Jul 2025 08:05:00 +0000"
    assert (message["Content-Language"], message["Auto-Submitted"]) == ("de", "auto-generated")
    assert message["List-Unsubscribe"] is None
    text, html = _parts(message)
    assert "Dienstag, 01.07.2025, 10:00 Uhr" in text  # 08:00 UTC is 10:00 in Berlin (CEST)
    assert "1 Min. 35 Sek." in text
    assert "+49 1521 1014450" in text
    assert "<script>" in text  # plain text is not HTML
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;Erika&lt;/b&gt; &amp; Co" in html
    assert "https://portal.example.de/notes/n%201%2F2?t=kanzlei-meyer" in text


def test_r_con_1_only_marketing_carries_list_unsubscribe() -> None:
    message = COMPOSER.compose(
        _note(),
        secret=False,
        to="buero@example.de",
        message_id="<d-2@example.de>",
        purpose=ConsentPurpose.MARKETING,
        now=NOW,
    )
    assert message["List-Unsubscribe"] == "<mailto:notiz@example.de?subject=unsubscribe>"


def test_r_sec_3_secret_mail_names_neither_caller_nor_concern() -> None:
    message = COMPOSER.compose(
        _note(),
        secret=True,
        to="buero@example.de",
        message_id="<d-3@example.de>",
        purpose=ConsentPurpose.NOTIFICATION,
        now=NOW,
    )
    raw = message.as_string()
    parsed = _round_trip(message)
    text, html = _parts(parsed)
    assert parsed["Subject"] == "Neuer Anruf für Frau Meyer"
    for secret in ("Erika", "Rückruf", "script", "1014450", "erika@example.de"):
        assert secret not in raw
        assert secret not in text
        assert secret not in html
    assert "Dienstag, 01.07.2025, 10:00 Uhr" in text
    assert "Schweigepflicht" in text


def test_header_injection_in_names_is_flattened() -> None:
    note = _note(caller=Caller(name="Eve\r\nBcc: x@evil.example", phone="+4915211014450"))
    message = COMPOSER.compose(
        note,
        secret=False,
        to="buero@example.de",
        message_id="<d-4@example.de>",
        purpose=ConsentPurpose.NOTIFICATION,
        now=NOW,
    )
    parsed = _round_trip(message)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Anruf von Eve Bcc: x@evil.example für Frau Meyer"

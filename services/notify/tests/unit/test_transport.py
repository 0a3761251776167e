"""Which failures are transient and which permanent; error reasons without personal data."""

from __future__ import annotations

import datetime as dt

import aiosmtplib
import httpx
import pytest

from switchboard_notify.sms_gateways import check_response
from switchboard_notify.smtp import classify
from switchboard_notify.transport import (
    PermanentSendError,
    TransientSendError,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (
            aiosmtplib.SMTPResponseException(451, "4.3.0 Try later"),
            TransientSendError,
            "smtp 451 4.3.0",
        ),
        (
            aiosmtplib.SMTPDataError(554, "5.7.1 <a@b.de> rejected"),
            PermanentSendError,
            "smtp 554 5.7.1",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 <a@b.de> unknown", "a@b.de")]
            ),
            PermanentSendError,
            "smtp 550 5.1.1",
        ),
        (
            ConnectionRefusedError(111, "refused"),
            TransientSendError,
            "smtp connection failed (ConnectionRefusedError)",
        ),
        (
            aiosmtplib.SMTPServerDisconnected("gone"),
            TransientSendError,
            "smtp connection failed (SMTPServerDisconnected)",
        ),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientSendError, "smtp timeout"),
        (
            aiosmtplib.SMTPAuthenticationError(535, "bad"),
            TransientSendError,
            "smtp authentication failed (535)",
        ),
    ],
)
def test_smtp_4xx_and_connection_trouble_are_transient_5xx_permanent(
    error: BaseException, kind: type[Exception], reason: str
) -> None:
    classified = classify(error)
    assert isinstance(classified, kind)
    assert classified.reason == reason
    assert "a@b.de" not in classified.reason


def _response(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_http_429_and_5xx_are_transient_with_retry_after_other_4xx_permanent() -> None:
    with pytest.raises(TransientSendError) as limited:
        check_response("twilio", _response(429, {"code": 20429}, **{"Retry-After": "7"}))
    assert (limited.value.reason, limited.value.retry_after_s) == (
        "twilio http 429 code 20429",
        7.0,
    )
    with pytest.raises(TransientSendError):
        check_response("sipgate", _response(503))
    with pytest.raises(PermanentSendError) as bad:
        check_response("twilio", _response(400, {"code": 21211, "message": "+49151 invalid"}))
    assert bad.value.reason == "twilio http 400 code 21211"
    check_response("sipgate", _response(204))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Fri, 14 Mar 2025 09:00:30 GMT", now) == 30
    assert retry_after_seconds("Fri, 14 Mar 2025 08:00:00 GMT", now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_retry_after_of_unicode_digits_is_ignored_not_a_crash() -> None:
    """`"²".isdigit()` is True in Python, `float("²")` a ValueError: it escaped the sender."""
    assert retry_after_seconds("²") is None
    assert retry_after_seconds("٣") is None  # an Arabic-Indic three


def test_an_smtp_reply_that_is_no_reply_is_transient() -> None:
    """aiosmtplib's -1: an unreadable or oversized line (a misconfigured server or port)."""
    error = classify(aiosmtplib.SMTPResponseException(-1, "Malformed SMTP response line"))
    assert isinstance(error, TransientSendError)

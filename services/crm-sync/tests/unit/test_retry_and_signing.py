"""Backoff with jitter, the CRMs' rate-limit hints, the breaker, and webhook signatures."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from switchboard_crm_sync.connectors.base import CrmError, Failure, error_code
from switchboard_crm_sync.connectors.webhook import encode, message_id, signature
from switchboard_crm_sync.credentials import new_webhook_secret
from switchboard_crm_sync.retry import (
    MAX_VENDOR_WAIT_S,
    Backoff,
    Breaker,
    hubspot_wait,
    pipedrive_wait,
    retry_after,
)


def test_backoff_grows_is_capped_and_jittered_down_only() -> None:
    backoff = Backoff(5.0, 300.0, random.Random(7))
    delays = [backoff.delay(n) for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        exponential = min(300.0, 5.0 * 4 ** (n - 1))
        assert exponential / 2 <= delay <= exponential


def test_retry_after_is_a_floor_jittered_upwards_only() -> None:
    backoff = Backoff(0.1, 1.0, random.Random(1))
    for _ in range(50):
        assert 2.0 <= backoff.delay(1, at_least=2.0) <= 2.2


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "Fri, 14 Mar 2025 09:30:30 GMT"}, now) == 30.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_hubspot_rate_limit_headers_and_policies() -> None:
    window = {"x-hubspot-ratelimit-interval-milliseconds": "10000"}
    assert hubspot_wait({**window, "x-hubspot-ratelimit-remaining": "0"}, None) == 10.0
    assert hubspot_wait({**window, "x-hubspot-ratelimit-remaining": "12"}, None) is None
    assert hubspot_wait({"x-hubspot-ratelimit-secondly-remaining": "0"}, None) == 1.0
    assert hubspot_wait({}, "TEN_SECONDLY_ROLLING") == 10.0
    assert hubspot_wait({}, "DAILY") == 3600.0


def test_the_breaker_opens_after_failures_in_a_row_and_half_opens_with_one() -> None:
    breaker = Breaker(threshold=5, open_s=60)
    assert not breaker.opens(4)
    assert breaker.opens(5)
    assert breaker.allowed_in_flight(0, 4) == 4
    assert breaker.allowed_in_flight(5, 4) == 1


def test_signatures_verify_with_the_standardwebhooks_package() -> None:
    secret = new_webhook_secret()
    body = encode(
        {"type": "note.created", "version": 1, "data": {"note_id": "n1", "concern": "Grüße"}}
    )
    msg_id = message_id("t1", "n1", "note.created")
    timestamp = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
    assert Webhook(secret).verify(body, headers)["data"]["concern"] == "Grüße"


def test_webhook_ids_are_stable_per_note_and_message_type() -> None:
    assert message_id("t1", "n1", "note.created") == message_id("t1", "n1", "note.created")
    assert message_id("t1", "n1", "note.created") != message_id("t1", "n1", "note.deleted")
    assert message_id("t1", "n1", "note.created") != message_id("t2", "n1", "note.created")


def test_a_crms_wait_is_capped_and_an_odd_one_ignored() -> None:
    """`Retry-After: 315360000` paused a connector for ten years, `x-ratelimit-reset: inf`
    for ever, and `Retry-After: ²` failed the transfer for good (a ValueError)."""
    ten_years = CrmError(
        Failure.RATE_LIMITED, "HTTP 429", wait_s=retry_after({"retry-after": "315360000"})
    )
    assert ten_years.wait_s == MAX_VENDOR_WAIT_S
    assert (
        CrmError(
            Failure.RATE_LIMITED, "", wait_s=pipedrive_wait({"x-ratelimit-reset": "inf"})
        ).wait_s
        is None
    )
    assert CrmError(Failure.RATE_LIMITED, "", wait_s=float("nan")).wait_s is None
    assert CrmError(Failure.RATE_LIMITED, "", wait_s=-5).wait_s is None
    assert retry_after({"retry-after": "²"}) is None
    far = {"retry-after": "Thu, 01 Jan 2099 00:00:00 GMT"}
    assert CrmError(Failure.RATE_LIMITED, "", wait_s=retry_after(far)).wait_s == MAX_VENDOR_WAIT_S


def test_a_vendors_error_code_is_kept_only_when_it_is_a_plain_code() -> None:
    """A receiver can put anything in `code`: an address and a number reached the log."""
    assert error_code({"errorCode": "max@kunde.de +4915112345678"}) == ""
    assert error_code({"category": "VALIDATION_ERROR"}) == "VALIDATION_ERROR"
    assert error_code([{"errorCode": "INVALID_FIELD"}]) == "INVALID_FIELD"
    assert error_code({"code": 20003}) == "20003"
    assert error_code({"code": {"nested": 1}}) == ""

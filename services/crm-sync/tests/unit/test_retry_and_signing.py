"""Backoff with jitter, the CRMs' rate-limit hints, the breaker, and webhook signatures."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from switchboard_crm_sync.connectors.webhook import encode, message_id, signature
from switchboard_crm_sync.credentials import new_webhook_secret
from switchboard_crm_sync.retry import Backoff, Breaker, hubspot_wait, retry_after


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

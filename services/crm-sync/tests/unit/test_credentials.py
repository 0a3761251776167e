"""Credentials sealed with AES-256-GCM, keys identified and rotated, secrets well-formed."""

from __future__ import annotations

import base64

import pytest
from standardwebhooks.webhooks import Webhook

from switchboard_crm_sync.credentials import (
    CredentialsUnreadable,
    InvalidKey,
    Keyring,
    WebhookCredentials,
    key_id,
    new_key,
    new_webhook_secret,
    parse_keys,
)

VALUES = {"token": "pat-eu1-0123456789abcdef"}


def test_sealed_credentials_open_only_for_their_connector() -> None:
    keyring = Keyring.from_setting(new_key())
    sealed = keyring.seal(VALUES, bound_to="t1:hubspot")
    assert VALUES["token"] not in str(sealed)
    assert keyring.open(sealed, bound_to="t1:hubspot") == VALUES
    with pytest.raises(CredentialsUnreadable):
        keyring.open(sealed, bound_to="t2:hubspot")  # copied onto another tenant's connector


def test_tampered_or_foreign_ciphertexts_do_not_open() -> None:
    keyring = Keyring.from_setting(new_key())
    sealed = keyring.seal(VALUES, bound_to="c")
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(CredentialsUnreadable):
        keyring.open({**sealed, "ciphertext": base64.b64encode(bytes(raw)).decode()}, bound_to="c")
    with pytest.raises(CredentialsUnreadable):
        Keyring.from_setting(new_key()).open(sealed, bound_to="c")


def test_keys_rotate_newest_first_and_old_ciphertexts_still_open() -> None:
    old, new = new_key(), new_key()
    sealed_before = Keyring.from_setting(old).seal(VALUES, bound_to="c")
    rotated = Keyring.from_setting(f"{new}, {old}")
    assert rotated.open(sealed_before, bound_to="c") == VALUES
    assert not rotated.is_current(sealed_before)
    resealed = rotated.seal(VALUES, bound_to="c")
    assert rotated.is_current(resealed)
    assert resealed["kid"] == key_id(base64.b64decode(new)) != sealed_before["kid"]
    with pytest.raises(CredentialsUnreadable):
        Keyring.from_setting(new).open(sealed_before, bound_to="c")  # the old key retired


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("not base64!", "key 1 is not base64"),
        (base64.b64encode(b"short").decode(), "key 1 is not 32 bytes"),
        (f"{new_key()},{base64.b64encode(b'x' * 16).decode()}", "key 2 is not 32 bytes"),
    ],
    ids=["not base64", "short", "second key short"],
)
def test_bad_keys_are_refused_without_quoting_them(setting: str, message: str) -> None:
    with pytest.raises(InvalidKey) as refused:
        parse_keys(setting)
    assert str(refused.value) == message


def test_a_key_in_the_url_safe_alphabet_is_the_same_key() -> None:
    raw = bytes(range(224, 256))  # encodes with "+" and "/" in the standard alphabet
    standard, urlsafe = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    assert standard != urlsafe
    assert parse_keys(urlsafe) == parse_keys(standard) == [raw]
    assert parse_keys(urlsafe.rstrip("=")) == [raw]  # as secrets.token_urlsafe writes it


def test_generated_webhook_secrets_are_standard_webhooks_secrets() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    Webhook(secret)  # the reference implementation accepts it
    assert WebhookCredentials(url="https://x.example", secret=secret).secret == secret
    for bad in ("plain", "whsec_!!!", "whsec_" + base64.b64encode(b"x" * 8).decode()):
        with pytest.raises(ValueError, match=r"whsec_|bytes"):
            WebhookCredentials(url="https://x.example", secret=bad)

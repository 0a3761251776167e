"""Connector credentials: what each kind needs, and their encryption at rest (AES-256-GCM).

Credentials are write-only: the API accepts them, stores them sealed, and never answers
them. The key comes from `CRM_SYNC_CREDENTIALS_KEY` (base64 of 32 bytes; several,
comma-separated, newest first, while keys rotate). Each sealed value names the id of the
key that sealed it, and its associated data is the connector's id, so a sealed value copied
onto another tenant's connector does not open (docs/decisions/0012).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

KEY_BYTES = 32
NONCE_BYTES = 12
ALGORITHM = "AES-256-GCM"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret


class InvalidKey(ValueError):
    """`CRM_SYNC_CREDENTIALS_KEY` is not a list of base64-encoded 32-byte keys."""


class CredentialsUnreadable(Exception):
    """Sealed credentials that no configured key opens (a key retired too early, tampering)."""


def key_id(key: bytes) -> str:
    """A short, stable id of a key: stored with each ciphertext, reveals nothing of the key."""
    return hashlib.sha256(b"switchboard-crm-sync-key:" + key).hexdigest()[:12]


def parse_keys(text: str) -> list[bytes]:
    """The keys of the setting, newest first; InvalidKey (never quoting a key) otherwise."""
    keys = []
    for position, part in enumerate(p.strip() for p in text.split(",")):
        standard = part.replace("-", "+").replace("_", "/")  # the URL-safe alphabet too
        standard += "=" * (-len(standard) % 4)  # and without padding (secrets.token_urlsafe)
        try:
            raw = base64.b64decode(standard, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKey(f"key {position + 1} is not base64") from None
        if len(raw) != KEY_BYTES:
            raise InvalidKey(f"key {position + 1} is not {KEY_BYTES} bytes")
        keys.append(raw)
    if not keys:
        raise InvalidKey("no key given")
    return keys


def new_key() -> str:
    """A fresh key, as the setting takes it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    aead: AESGCM


class Keyring:
    """Seals with the newest key; opens with whichever key sealed."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise InvalidKey("no key given")
        self._keys = [_Key(key_id(k), AESGCM(k)) for k in keys]
        self._by_id = {k.kid: k for k in self._keys}

    @classmethod
    def from_setting(cls, text: str) -> Keyring:
        """The keyring of `CRM_SYNC_CREDENTIALS_KEY`."""
        return cls(parse_keys(text))

    @property
    def current_kid(self) -> str:
        """The id of the key new values are sealed with."""
        return self._keys[0].kid

    def seal(self, values: dict[str, Any], *, bound_to: str) -> dict[str, str]:
        """`values` encrypted with the newest key, bound to `bound_to` (the connector id)."""
        key = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(values, separators=(",", ":")).encode()
        ciphertext = key.aead.encrypt(nonce, plaintext, bound_to.encode())
        return {
            "alg": ALGORITHM,
            "kid": key.kid,
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }

    def open(self, sealed: dict[str, Any], *, bound_to: str) -> dict[str, Any]:
        """The values sealed in `sealed`; CredentialsUnreadable when no key opens them."""
        key = self._by_id.get(str(sealed.get("kid")))
        if key is None or sealed.get("alg") != ALGORITHM:
            raise CredentialsUnreadable("sealed with a key that is not configured")
        try:
            nonce = base64.b64decode(str(sealed["nonce"]))
            ciphertext = base64.b64decode(str(sealed["ciphertext"]))
            plaintext = key.aead.decrypt(nonce, ciphertext, bound_to.encode())
            values: dict[str, Any] = json.loads(plaintext)
        except (KeyError, ValueError, InvalidTag):
            raise CredentialsUnreadable("sealed credentials do not open") from None
        return values

    def is_current(self, sealed: dict[str, Any]) -> bool:
        """True when `sealed` uses the newest key (else it is re-sealed on next use)."""
        return sealed.get("kid") == self.current_kid


Token = Annotated[str, StringConstraints(min_length=8, max_length=4096, pattern=r"^[\x21-\x7e]+$")]
"""A bearer or API token: printable ASCII without spaces (it travels in a header)."""
UrlText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubSpotCredentials(_Credentials):
    """A HubSpot private app's access token."""

    token: Token


class SalesforceCredentials(_Credentials):
    """An OAuth access token and the org's instance URL."""

    instance_url: UrlText
    token: Token


class PipedriveCredentials(_Credentials):
    """A Pipedrive user's API token."""

    api_token: Token


class WebhookCredentials(_Credentials):
    """The receiver's URL and the Standard Webhooks signing secret (generated if absent)."""

    url: UrlText
    secret: str | None = None

    @field_validator("secret")
    @classmethod
    def _secret_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(WEBHOOK_SECRET_PREFIX):
            raise ValueError("must start with whsec_")
        try:
            raw = base64.b64decode(value.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be whsec_ followed by base64") from None
        if not 24 <= len(raw) <= 64:
            raise ValueError("must hold 24 to 64 random bytes")
        return value


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` and base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret: its decoded bytes."""
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))

"""Webhooks for any other system: the note as versioned JSON, signed per Standard Webhooks.

Each message carries `webhook-id` (stable per note and message type, so a receiver can
drop a repeat), `webhook-timestamp` (unix seconds, fresh per attempt) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the
decoded `whsec_` secret. The body is the same on every attempt. 410 Gone disables the
connector. The schema is documented in the service README (version 1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..credentials import webhook_key
from ..domain import Kind, NoteContent
from .base import Connector, CrmError, CrmHttp, Deletion, Failure, RecordRef, Reply

SCHEMA_VERSION = 1
_NAMESPACE = uuid.UUID("0b7f4c02-93a1-4c55-8f1e-6a3d2c9e1f70")


def message_id(tenant_id: str, note_id: str, message_type: str) -> str:
    """The stable `webhook-id` of one message about one note."""
    return "msg_" + uuid.uuid5(_NAMESPACE, f"{tenant_id}:{note_id}:{message_type}").hex


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}` (Standard Webhooks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def encode(payload: dict[str, Any]) -> bytes:
    """The exact body bytes sent (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def note_created_payload(note: NoteContent, custom: dict[str, Any]) -> dict[str, Any]:
    """Schema v1 of `note.created`."""
    return {
        "type": "note.created",
        "version": SCHEMA_VERSION,
        "timestamp": note.created_at.isoformat(),
        "data": {
            "note_id": note.note_id,
            "call_id": note.call_id,
            "tenant_id": note.tenant_id,
            "started_at": note.started_at.isoformat(),
            "duration_seconds": note.duration_seconds,
            "caller": {
                "name": note.caller_name,
                "phone": note.caller_phone,
                "email": note.caller_email,
                "company": note.caller_company,
            },
            "concern": note.concern,
            "contact_person": note.contact_person,
            "forwarded_from": note.forwarded_from,
            "custom": custom,
        },
    }


def note_deleted_payload(tenant_id: str, deletion: Deletion) -> dict[str, Any]:
    """Schema v1 of `note.deleted`: the receiver must delete its copy (R-NOTE-2)."""
    return {
        "type": "note.deleted",
        "version": SCHEMA_VERSION,
        "timestamp": deletion.deleted_at,
        "data": {
            "note_id": deletion.note_id,
            "call_id": deletion.call_id,
            "tenant_id": tenant_id,
            "deleted_at": deletion.deleted_at,
            "reason": deletion.reason,
        },
    }


class WebhookConnector(Connector):
    """A client's HTTPS endpoint and its signing secret."""

    kind = Kind.WEBHOOK
    idempotent_create = True  # the webhook-id is stable: receivers drop repeats
    has_contacts = False

    def __init__(
        self,
        http: CrmHttp,
        *,
        tenant_id: str,
        secret: str,
        custom: dict[str, Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._tenant_id = tenant_id
        self._secret = secret
        self._custom = custom
        self._clock = clock

    @property
    def destination(self) -> str:
        """The receiver's host."""
        return self._http.host

    def failure_of(self, reply: Reply) -> CrmError | None:
        """410 Gone: the receiver asks never to be called again."""
        if reply.status_code == 410:
            return CrmError(Failure.GONE, "HTTP 410", status_code=410)
        return super().failure_of(reply)

    async def _post(self, msg_id: str, payload: dict[str, Any]) -> int:
        body = encode(payload)
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self._secret, msg_id, timestamp, body),
        }
        reply = await self._http.send("POST", content=body, headers=headers)
        return (await self.expect(reply)).status_code

    async def upsert_contact(self, note: NoteContent) -> str | None:
        """Webhooks have no contacts: the caller travels inside the note."""
        return None

    async def record_call_note(self, note: NoteContent, contact_id: str | None) -> RecordRef:
        """POST `note.created`; the record is the message id."""
        msg_id = message_id(self._tenant_id, note.note_id, "note.created")
        await self._post(msg_id, note_created_payload(note, self._custom))
        return RecordRef("webhook", msg_id)

    async def delete(self, record: RecordRef, deletion: Deletion) -> int:
        """POST `note.deleted`: the receiver deletes its copy."""
        msg_id = message_id(self._tenant_id, deletion.note_id, "note.deleted")
        return await self._post(msg_id, note_deleted_payload(self._tenant_id, deletion))

    async def test(self) -> int:
        """POST a signed `ping` (no personal data)."""
        now = datetime.fromtimestamp(self._clock(), UTC).isoformat()
        payload = {
            "type": "ping",
            "version": SCHEMA_VERSION,
            "timestamp": now,
            "data": {"tenant_id": self._tenant_id},
        }
        return await self._post("msg_" + uuid.uuid4().hex, payload)

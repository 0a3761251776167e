"""Pipedrive: the caller as a person (found by phone, then e-mail, else created), the call
as a call log (`POST /v1/callLogs`, outcome `connected`).

The API token travels in the `x-api-token` header, never in the URL. Pipedrive has no
idempotency key for call logs and cannot be searched for one: an attempt whose answer
was lost (a crash in the milliseconds between Pipedrive's answer and our write) may log
the call twice; the transfer log says so (docs/decisions/0012).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..domain import Kind, NoteContent
from ..mapping import FieldMapping, NoteField, contact_rules, properties, record_rules
from ..retry import pipedrive_wait, retry_after
from .base import Connector, CrmError, CrmHttp, Deletion, Failure, RecordRef, Reply, found_id, id_of

UNKNOWN_NUMBER = "unknown"


def _format(field: NoteField, value: Any, target: str) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")  # UTC, as Pipedrive wants it
    if field is NoteField.DURATION:
        return str(int(value))
    if field is NoteField.SUMMARY and target == "note":
        return html.escape(str(value)).replace("\n", "<br>")
    if target in ("phone", "email"):
        return [{"value": value, "primary": True, "label": "work"}]
    return value


class PipedriveConnector(Connector):
    """A Pipedrive company reached with a user's API token."""

    kind = Kind.PIPEDRIVE

    def __init__(self, http: CrmHttp, mapping: FieldMapping) -> None:
        self._http = http
        self._record = record_rules(Kind.PIPEDRIVE, mapping)
        self._contact = contact_rules(Kind.PIPEDRIVE, mapping)

    @property
    def destination(self) -> str:
        """The Pipedrive API host."""
        return self._http.host

    def failure_of(self, reply: Reply) -> CrmError | None:
        """A 429 says when the window resets (`x-ratelimit-reset`) if not `Retry-After`."""
        if reply.status_code == 429:
            wait = retry_after(reply.headers) or pipedrive_wait(reply.headers)
            return CrmError(Failure.RATE_LIMITED, "HTTP 429", status_code=429, wait_s=wait)
        return super().failure_of(reply)

    async def _find_person(self, field: str, term: str) -> str | None:
        params = {"term": term, "fields": field, "exact_match": "true", "limit": "1"}
        reply = await self.expect(await self._http.send("GET", "/v1/persons/search", params=params))
        data = reply.body.get("data") if isinstance(reply.body, dict) else None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            return None
        return found_id(items[0].get("item") if isinstance(items[0], dict) else None)

    async def upsert_contact(self, note: NoteContent) -> str | None:
        """The person with the caller's phone, else e-mail; created when there is none."""
        for field, value in (("phone", note.caller_phone), ("email", note.caller_email)):
            if value and len(value) >= 2:
                found = await self._find_person(field, value)
                if found is not None:
                    return found
        body = properties(note, self._contact, _format)
        reply = await self.expect(await self._http.send("POST", "/v1/persons", json_body=body))
        return id_of(reply.body, "id")

    async def record_call_note(self, note: NoteContent, contact_id: str | None) -> RecordRef:
        """The call log, for the person."""
        body = properties(note, self._record, _format)
        body.setdefault("to_phone_number", UNKNOWN_NUMBER)  # required by Pipedrive
        if contact_id:
            body["person_id"] = int(contact_id) if contact_id.isdigit() else contact_id
        reply = await self.expect(await self._http.send("POST", "/v1/callLogs", json_body=body))
        return RecordRef("callLogs", id_of(reply.body, "id"))

    async def delete(self, record: RecordRef, deletion: Deletion) -> int:
        """`DELETE /v1/callLogs/{id}`; a call log already gone counts as deleted."""
        reply = await self._http.send("DELETE", f"/v1/callLogs/{quote(record.record_id, safe='')}")
        if reply.status_code in (404, 410):
            return reply.status_code
        return (await self.expect(reply)).status_code

    async def test(self) -> int:
        """Read the token's own user."""
        return (await self.expect(await self._http.send("GET", "/v1/users/me"))).status_code

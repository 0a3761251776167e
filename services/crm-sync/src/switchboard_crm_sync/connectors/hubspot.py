"""HubSpot CRM v3: the caller as a contact, the call as a call engagement (or a note).

The contact is looked up by phone, then by e-mail (`POST /crm/v3/objects/contacts/search`)
and created if missing (a 409 "already exists" names the existing id). The call goes to
`/crm/v3/objects/calls` with `hs_call_direction` INBOUND, associated with the contact
(type 194; a note: `/crm/v3/objects/notes`, type 202), and carries the note id in
`hs_call_external_id`, so an attempt whose answer was lost can be found again.
HubSpot's search is eventually consistent, so crm-sync keeps its own mapping as well.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..domain import Kind, NoteContent
from ..mapping import FieldMapping, NoteField, contact_rules, properties, record_rules
from ..retry import LOCKED_WAIT_S, hubspot_wait, retry_after
from .base import Connector, CrmError, CrmHttp, Deletion, Failure, RecordRef, Reply, found_id, id_of

ASSOCIATION_TYPES = {"calls": 194, "notes": 202}
"""HUBSPOT_DEFINED association type ids: call → contact, note → contact."""
_EXISTING_ID = re.compile(r"Existing ID:\s*([0-9]{1,30})\b")


def _format(field: NoteField, value: Any, target: str) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if field is NoteField.DURATION:
        return str(int(value) * 1000)  # hs_call_duration is in milliseconds
    return value


class HubSpotConnector(Connector):
    """A HubSpot account reached with a private app's token."""

    kind = Kind.HUBSPOT

    def __init__(self, http: CrmHttp, mapping: FieldMapping) -> None:
        self._http = http
        self._object = mapping.hubspot_object or "calls"
        self._record = record_rules(Kind.HUBSPOT, mapping)
        self._contact = contact_rules(Kind.HUBSPOT, mapping)

    @property
    def destination(self) -> str:
        """The HubSpot API host."""
        return self._http.host

    def failure_of(self, reply: Reply) -> CrmError | None:
        """HubSpot's 429 names its policy; 423 (locked) means wait at least two seconds."""
        if 200 <= reply.status_code < 300:
            wait = hubspot_wait(reply.headers, None)
            if wait is not None:
                self.pause_s = max(self.pause_s or 0.0, wait)
            return None
        body = reply.body if isinstance(reply.body, dict) else {}
        if reply.status_code == 429:
            policy = body.get("policyName")
            wait = retry_after(reply.headers) or hubspot_wait(
                reply.headers, str(policy) if policy else "TEN_SECONDLY_ROLLING"
            )
            detail = f"HTTP 429 {policy or 'RATE_LIMITS'}"
            return CrmError(Failure.RATE_LIMITED, detail, status_code=429, wait_s=wait)
        if reply.status_code == 423:
            wait = max(LOCKED_WAIT_S, retry_after(reply.headers) or 0.0)
            return CrmError(Failure.RATE_LIMITED, "HTTP 423 LOCKED", status_code=423, wait_s=wait)
        return super().failure_of(reply)

    async def _search(self, objects: str, prop: str, value: str) -> str | None:
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}
            ],
            "properties": [prop],
            "limit": 1,
        }
        reply = await self.expect(
            await self._http.send("POST", f"/crm/v3/objects/{objects}/search", json_body=body)
        )
        results = reply.body.get("results") if isinstance(reply.body, dict) else None
        return found_id(results[0]) if isinstance(results, list) and results else None

    async def upsert_contact(self, note: NoteContent) -> str | None:
        """The contact with the caller's phone, else e-mail; created when there is none."""
        fields, _ = self._contact
        for field, value in (
            (NoteField.CALLER_PHONE, note.caller_phone),
            (NoteField.CALLER_EMAIL, note.caller_email),
        ):
            prop = fields.get(field)
            if prop and value:
                found = await self._search("contacts", prop, value)
                if found is not None:
                    return found
        body = {"properties": properties(note, self._contact, _format)}
        reply = await self._http.send("POST", "/crm/v3/objects/contacts", json_body=body)
        if reply.status_code == 409 and isinstance(reply.body, dict):
            existing = _EXISTING_ID.search(str(reply.body.get("message", "")))
            if existing:
                return existing.group(1)
        return id_of((await self.expect(reply)).body, "id")

    async def record_call_note(self, note: NoteContent, contact_id: str | None) -> RecordRef:
        """The call engagement (or note), associated with the contact."""
        body: dict[str, Any] = {"properties": properties(note, self._record, _format)}
        if contact_id:
            body["associations"] = [
                {
                    "to": {"id": contact_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": ASSOCIATION_TYPES[self._object],
                        }
                    ],
                }
            ]
        reply = await self.expect(
            await self._http.send("POST", f"/crm/v3/objects/{self._object}", json_body=body)
        )
        return RecordRef(self._object, id_of(reply.body, "id"))

    @property
    def can_find_recorded(self) -> bool:
        """Calls carry the note id (`hs_call_external_id`); notes cannot be searched for it."""
        return self._object == "calls" and NoteField.NOTE_ID in self._record[0]

    async def find_recorded(self, note: NoteContent | None, note_id: str) -> RecordRef | None:
        """The call carrying this note's id in its external id property, if HubSpot has it."""
        prop = self._record[0].get(NoteField.NOTE_ID)
        if not self.can_find_recorded or not prop:
            return None
        found = await self._search("calls", prop, note_id)
        return RecordRef("calls", found) if found else None

    async def delete(self, record: RecordRef, deletion: Deletion) -> int:
        """`DELETE /crm/v3/objects/{type}/{id}`; a record already gone counts as deleted."""
        path = f"/crm/v3/objects/{quote(record.record_type, safe='')}/"
        reply = await self._http.send("DELETE", path + quote(record.record_id, safe=""))
        if reply.status_code == 404:
            return 404
        return (await self.expect(reply)).status_code

    async def test(self) -> int:
        """Read one contact: proves the token and its CRM scopes."""
        reply = await self._http.send("GET", "/crm/v3/objects/contacts", params={"limit": "1"})
        return (await self.expect(reply)).status_code

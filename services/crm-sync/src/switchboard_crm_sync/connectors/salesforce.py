"""Salesforce REST: the caller upserted as a Contact by an external id, the call as a Task.

`PATCH /services/data/vNN.N/sobjects/Contact/<KeyField>/<phone>` creates or updates the
Contact (201 created, 200/204 updated); the Task (`TaskSubtype` Call, `CallType` Inbound,
`WhoId` the contact) carries the note id in an external id field
(`Switchboard_Note_Id__c` by default), so an attempt whose answer was lost is found again
with `GET /sobjects/Task/<field>/<note id>`, and a repeated create answers DUPLICATE_VALUE.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..domain import Kind, NoteContent
from ..mapping import (
    SALESFORCE_CONTACT_KEY,
    FieldMapping,
    NoteField,
    contact_rules,
    properties,
    record_rules,
)
from ..retry import retry_after
from .base import Connector, CrmError, CrmHttp, Deletion, Failure, RecordRef, Reply, id_of, plain_id

REQUEST_LIMIT_WAIT_S = 300.0
_DUPLICATE_ID = re.compile(r"record with id:\s*([A-Za-z0-9]{15,18})")


def _format(field: NoteField, value: Any, target: str) -> Any:
    if isinstance(value, datetime):
        if target == "ActivityDate":
            return value.date().isoformat()
        return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return value


def _q(value: str) -> str:
    return quote(value, safe="")


class SalesforceConnector(Connector):
    """A Salesforce org reached with an OAuth access token."""

    kind = Kind.SALESFORCE
    remembers_contacts = False  # the upsert by external id cannot create a second Contact

    def __init__(self, http: CrmHttp, mapping: FieldMapping, *, api_version: str) -> None:
        self._http = http
        self._prefix = f"/services/data/{api_version}/sobjects"
        self._contact_key = mapping.contact_key_field or SALESFORCE_CONTACT_KEY
        self._record = record_rules(Kind.SALESFORCE, mapping)
        self._contact = contact_rules(Kind.SALESFORCE, mapping)
        self._note_key = self._record[0].get(NoteField.NOTE_ID)

    @property
    def destination(self) -> str:
        """The org's instance host."""
        return self._http.host

    def failure_of(self, reply: Reply) -> CrmError | None:
        """403 REQUEST_LIMIT_EXCEEDED is the org's API limit, not a credentials problem."""
        body = reply.body
        code = body[0].get("errorCode") if isinstance(body, list) and body else None
        if reply.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            wait = retry_after(reply.headers) or REQUEST_LIMIT_WAIT_S
            return CrmError(
                Failure.RATE_LIMITED,
                "HTTP 403 REQUEST_LIMIT_EXCEEDED",
                status_code=403,
                wait_s=wait,
            )
        return super().failure_of(reply)

    async def upsert_contact(self, note: NoteContent) -> str | None:
        """Create or update the Contact whose key field holds the caller's phone."""
        path = f"{self._prefix}/Contact/{_q(self._contact_key)}/{_q(note.caller_phone)}"
        body = properties(note, self._contact, _format)
        body.pop(self._contact_key, None)  # the key travels in the path only
        reply = await self.expect(await self._http.send("PATCH", path, json_body=body))
        created = plain_id(reply.body.get("id")) if isinstance(reply.body, dict) else None
        if reply.status_code != 204 and created is not None:
            return created
        found = await self.expect(await self._http.send("GET", path, params={"fields": "Id"}))
        return id_of(found.body, "Id", "id")

    async def record_call_note(self, note: NoteContent, contact_id: str | None) -> RecordRef:
        """The Task: a call, inbound, for the contact."""
        body = properties(note, self._record, _format)
        if contact_id:
            body["WhoId"] = contact_id
        reply = await self._http.send("POST", f"{self._prefix}/Task/", json_body=body)
        duplicate = self._duplicate_of(reply)
        if duplicate is not None:
            return RecordRef("Task", duplicate)
        return RecordRef("Task", id_of((await self.expect(reply)).body, "id"))

    def _duplicate_of(self, reply: Reply) -> str | None:
        if reply.status_code != 400 or not self._note_key or not isinstance(reply.body, list):
            return None
        for error in reply.body:
            if isinstance(error, dict) and error.get("errorCode") == "DUPLICATE_VALUE":
                match = _DUPLICATE_ID.search(str(error.get("message", "")))
                if match:
                    return match.group(1)
        return None

    @property
    def can_find_recorded(self) -> bool:
        """Tasks carry the note id in an external id field (unless the mapping drops it)."""
        return bool(self._note_key)

    async def find_recorded(self, note: NoteContent | None, note_id: str) -> RecordRef | None:
        """The Task whose external id field holds the note id (an exact, consistent lookup)."""
        if not self._note_key:
            return None
        path = f"{self._prefix}/Task/{_q(self._note_key)}/{_q(note_id)}"
        reply = await self._http.send("GET", path, params={"fields": "Id"})
        if reply.status_code == 404:
            return None
        return RecordRef("Task", id_of((await self.expect(reply)).body, "Id", "id"))

    async def delete(self, record: RecordRef, deletion: Deletion) -> int:
        """`DELETE /sobjects/Task/{id}`; a Task already gone counts as deleted."""
        path = f"{self._prefix}/{_q(record.record_type)}/{_q(record.record_id)}"
        reply = await self._http.send("DELETE", path)
        if reply.status_code == 404:
            return 404
        return (await self.expect(reply)).status_code

    async def test(self) -> int:
        """Read the org's limits: proves the token and the instance."""
        reply = await self._http.send("GET", self._prefix.removesuffix("/sobjects") + "/limits")
        return (await self.expect(reply)).status_code

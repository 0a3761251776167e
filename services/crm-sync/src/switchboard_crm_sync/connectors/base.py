"""What every connector offers, how it fails, and the one way it talks HTTP.

A connector does three things (`upsert_contact`, `record_call_note`, `delete`) plus a
harmless `test` call and, where the CRM can be searched for it, `find_recorded` (did an
earlier attempt whose answer was lost create the record?). Every CRM answer is read at
most `MAX_BODY_BYTES`; every failure becomes a `CrmError` whose `detail` holds the
status and the vendor's error *code*, never its message (which may quote data) and never
a URL (which may carry a token).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from ..domain import Kind, NoteContent
from ..retry import bounded_wait, retry_after
from ..ssrf import HostUnresolved, Target, UrlGuard, UrlRefused

MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "switchboard-crm-sync/0.1"


class Failure(StrEnum):
    """How a CRM call failed, which decides what happens next."""

    RATE_LIMITED = "rate_limited"
    """429 and the like: wait as told, for the whole connector."""
    UNAVAILABLE = "unavailable"
    """5xx, timeouts, connection errors: back off; counts for the circuit breaker."""
    UNAUTHORIZED = "unauthorized"
    """401/403: the credentials are refused; the connector needs attention."""
    GONE = "gone"
    """410 from a webhook receiver: the endpoint asks us to stop; the connector is disabled."""
    REJECTED = "rejected"
    """Any other 4xx: this transfer fails, the next may not."""
    DESTINATION_REFUSED = "destination_refused"
    """The destination now resolves to an address the SSRF guard refuses."""


class CrmError(Exception):
    """A CRM call that did not succeed."""

    def __init__(
        self,
        failure: Failure,
        detail: str,
        *,
        status_code: int | None = None,
        wait_s: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.status_code = status_code
        self.wait_s = bounded_wait(wait_s)


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A record crm-sync created in the CRM: its type (e.g. `calls`) and id."""

    record_type: str
    record_id: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A CRM's answer: status, lower-case headers, JSON body (None if none or not JSON)."""

    status_code: int
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class Deletion:
    """What a `note.deleted` said, for connectors that pass it on (webhooks)."""

    note_id: str
    call_id: str
    deleted_at: str
    reason: str


_CODE = re.compile(r"[A-Za-z0-9_.-]{1,60}")
CODE_KEYS = ("category", "errorCode", "error_code", "code")


def error_code(body: Any) -> str:
    """The vendor's error code or category from an error body ('' if none, or if it is not
    a plain code: a receiver can put anything there, an address or a number included)."""
    found: Any = None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        found = body[0].get("errorCode")
    elif isinstance(body, dict):
        found = next((body[k] for k in CODE_KEYS if body.get(k) not in (None, "")), None)
    code = str(found) if isinstance(found, str | int) else ""
    return code if _CODE.fullmatch(code) else ""


def classify(reply: Reply) -> CrmError | None:
    """None for a success; else the failure a plain status code means."""
    status = reply.status_code
    if 200 <= status < 300:
        return None
    code = error_code(reply.body)
    detail = f"HTTP {status}{' ' + code if code else ''}"
    wait = retry_after(reply.headers)
    if status == 429:
        return CrmError(Failure.RATE_LIMITED, detail, status_code=status, wait_s=wait)
    if status in (401, 403):
        return CrmError(Failure.UNAUTHORIZED, detail, status_code=status)
    if status == 408 or status >= 500:
        return CrmError(Failure.UNAVAILABLE, detail, status_code=status, wait_s=wait)
    return CrmError(Failure.REJECTED, detail, status_code=status)


class CrmHttp:
    """Requests to one CRM base URL, pinned to a checked address when the URL is a client's."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base: Target,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> None:
        self._client = client
        self._base = base
        self._headers = {"User-Agent": USER_AGENT, **headers}
        self._timeout = timeout_s

    @property
    def host(self) -> str:
        """The destination's host name, for the transfer log."""
        return self._base.host

    async def send(
        self,
        method: str,
        path: str = "",
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; transport failures become `CrmError(UNAVAILABLE)`."""
        url = self._base.request_url.rstrip("/") + path if path else self._base.request_url
        all_headers = {**self._headers, "Host": self._base.host_header, **(headers or {})}
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers["Content-Type"] = "application/json"
        request = self._client.build_request(
            method,
            url,
            content=content,
            params=params,
            headers=all_headers,
            timeout=self._timeout,
            extensions=self._base.extensions,
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                raw = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise CrmError(Failure.UNAVAILABLE, "timed out") from None
        except httpx.HTTPError as exc:
            raise CrmError(
                Failure.UNAVAILABLE, f"connection failed ({type(exc).__name__})"
            ) from None
        return Reply(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, _json(raw)
        )


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def checked_target(guard: UrlGuard, url: str) -> Target:
    """A client URL resolved and checked now (before each request: DNS rebinding)."""
    try:
        return await guard.target(url)
    except UrlRefused as exc:
        raise CrmError(Failure.DESTINATION_REFUSED, str(exc)) from None
    except HostUnresolved:
        raise CrmError(Failure.UNAVAILABLE, "host name does not resolve") from None


def fixed_target(url: str) -> Target:
    """An operator-configured base URL (settings): used as it is."""
    from urllib.parse import urlsplit

    return Target(url=url, host=urlsplit(url).hostname or "", address=None)


class Connector(ABC):
    """One tenant's connection to one CRM, for one transfer attempt."""

    kind: Kind
    pause_s: float | None = None
    """Set when the CRM's rate-limit headers ask for a pause after a success (HubSpot)."""
    last_status: int | None = None
    """The status code of the last successful call."""
    idempotent_create: bool = False
    """True when sending a create again cannot duplicate the record (a stable
    webhook-id); otherwise an unfinished earlier create is looked for first."""
    has_contacts: bool = True
    """False when the CRM has no contacts (webhooks: the caller travels in the note)."""
    remembers_contacts: bool = True
    """Whether found contacts are remembered (False where an upsert cannot duplicate)."""

    @property
    def can_find_recorded(self) -> bool:
        """Whether `find_recorded` can look for a record an interrupted attempt created."""
        return False

    @property
    @abstractmethod
    def destination(self) -> str:
        """The host the data goes to."""

    @abstractmethod
    async def upsert_contact(self, note: NoteContent) -> str | None:
        """The CRM's contact for the caller, found or created (None: no contacts here)."""

    @abstractmethod
    async def record_call_note(self, note: NoteContent, contact_id: str | None) -> RecordRef:
        """Create the call record (associated with the contact); its reference."""

    async def find_recorded(self, note: NoteContent | None, note_id: str) -> RecordRef | None:
        """The record an earlier, unfinished attempt may have created (None: none found)."""
        return None

    @abstractmethod
    async def delete(self, record: RecordRef, deletion: Deletion) -> int:
        """Delete the record (404 counts as done); the CRM's status code."""

    @abstractmethod
    async def test(self) -> int:
        """A harmless authenticated call; the CRM's status code (raises CrmError on failure)."""

    def failure_of(self, reply: Reply) -> CrmError | None:
        """None for a success; else the failure (vendor-specific rules may refine it)."""
        return classify(reply)

    async def expect(self, reply: Reply) -> Reply:
        """`reply` if it is a success; raises its CrmError otherwise."""
        error = self.failure_of(reply)
        if error is not None:
            raise error
        self.last_status = reply.status_code
        return reply


_RECORD_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
"""What a CRM's record id looks like (HubSpot and Pipedrive numbers, Salesforce's 15/18
characters); anything else in an answer is not taken for an id."""


class UnnamedRecord(CrmError):
    """A CRM accepted a create (2xx) without naming the record in a form we can keep."""

    def __init__(self) -> None:
        super().__init__(Failure.REJECTED, "answer without a usable record id")


def plain_id(value: Any) -> str | None:
    """`value` as a record id, or None when it is none (a bool, a float, a path, 5,000
    digits, text with spaces: all seen in answers that were not what the vendor documents)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value) if isinstance(value, str) or abs(value) < 10**100 else ""
    return text if _RECORD_ID.fullmatch(text) else None


def id_of(body: Any, *keys: str) -> str:
    """The record id in a create answer (first present key), as a string; `UnnamedRecord`
    when the answer has none we can use."""
    if isinstance(body, dict):
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        for key in keys:
            if isinstance(data, dict) and data.get(key) not in (None, ""):
                found = plain_id(data[key])
                if found is None:
                    break
                return found
    raise UnnamedRecord()


def found_id(item: Any, key: str = "id") -> str:
    """The id of a search hit; a hit without a usable one is a CRM answer we cannot read."""
    found = plain_id(item.get(key)) if isinstance(item, dict) else None
    if found is None:
        raise CrmError(Failure.REJECTED, "search answer without a usable record id")
    return found

"""SMS over an HTTP gateway: a small provider interface, Twilio's and sipgate's APIs (httpx).

HTTP 429 and 5xx, timeouts and connection errors are transient (a `Retry-After` is passed
on), and so are 401 and 403: refused credentials are ours to fix, as for SMTP, and every
SMS would otherwise fail at once until they are. Any other 4xx is permanent. An error
reason keeps the status and the vendor's error code, never the vendor's message, which
quotes the number. A 2xx is accepted once its status line arrived, whatever its body does
(empty, not JSON, not an object, stalling): reading on could only send the text twice.
"""

from __future__ import annotations

import json
from typing import Protocol

import httpx

from .config import NotifySettings, SmsProviderName
from .transport import (
    Accepted,
    PermanentSendError,
    SendError,
    TransientSendError,
    retry_after_seconds,
)


class SmsGateway(Protocol):
    """Sends one text to one mobile number."""

    provider: str

    async def send(self, to: str, text: str) -> Accepted:
        """Hand the text to the gateway; raise a SendError otherwise."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("code") if isinstance(body, dict) else None
    return f" code {code}" if isinstance(code, int | str) and str(code).isalnum() else ""


def send_error(provider: str, response: httpx.Response) -> SendError:
    """The SendError an unsuccessful (not 2xx) answer means."""
    reason = f"{provider} http {response.status_code}{_error_code(response)}"
    if response.status_code in (401, 403, 429) or response.status_code >= 500:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return TransientSendError(provider, reason, retry_after_s=retry_after)
    return PermanentSendError(provider, reason)


def check_response(provider: str, response: httpx.Response) -> None:
    """Raise the SendError an unsuccessful answer means; nothing for a 2xx."""
    if not response.is_success:
        raise send_error(provider, response)


MAX_ANSWER_BYTES = 64 * 1024
MAX_MESSAGE_ID = 100


async def _body_of_success(response: httpx.Response) -> bytes:
    """Up to `MAX_ANSWER_BYTES` of a 2xx body; what stalls or breaks off is left unread."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ANSWER_BYTES:
                break
    except httpx.HTTPError:  # the gateway accepted the text: its body changes nothing
        pass
    return b"".join(chunks)


class _HttpGateway:
    provider = "sms"

    def __init__(self, settings: NotifySettings) -> None:
        self._from = settings.sms_from or ""
        self._configured = bool(settings.sms_username and settings.sms_password)
        auth = (
            (settings.sms_username or "", settings.sms_password.get_secret_value())
            if settings.sms_password
            else None
        )
        self._account = settings.sms_username or ""
        self._client = httpx.AsyncClient(
            base_url=settings.sms_base_url,
            auth=auth,
            timeout=httpx.Timeout(settings.sms_timeout_s, connect=min(5.0, settings.sms_timeout_s)),
            limits=httpx.Limits(max_connections=settings.sender_concurrency),
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    async def _post(self, path: str, **kwargs: object) -> bytes:
        """The body of a 2xx answer (up to `MAX_ANSWER_BYTES`); a SendError otherwise."""
        if not self._configured:
            raise TransientSendError(self.provider, f"{self.provider} credentials not configured")
        try:
            async with self._client.stream("POST", path, **kwargs) as response:  # type: ignore[arg-type]
                if response.is_success:
                    return await _body_of_success(response)
                await response.aread()
                raise send_error(self.provider, response)
        except httpx.TimeoutException:
            raise TransientSendError(self.provider, f"{self.provider} timeout") from None
        except httpx.TransportError as exc:
            reason = f"{self.provider} connection failed ({type(exc).__name__})"
            raise TransientSendError(self.provider, reason) from None

    async def close(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()


class TwilioGateway(_HttpGateway):
    """Twilio's Messages API: form-encoded `To`, `From` (or `MessagingServiceSid`), `Body`."""

    provider = "twilio"

    async def send(self, to: str, text: str) -> Accepted:
        """POST /2010-04-01/Accounts/{sid}/Messages.json; 201 with the message `sid`."""
        sender = "MessagingServiceSid" if self._from.startswith("MG") else "From"
        body = await self._post(
            f"/2010-04-01/Accounts/{self._account}/Messages.json",
            data={"To": to, sender: self._from, "Body": text},
        )
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            answer = None
        sid = answer.get("sid") if isinstance(answer, dict) else None
        valid = isinstance(sid, str) and 0 < len(sid) <= MAX_MESSAGE_ID
        return Accepted(self.provider, sid if valid else None)


class SipgateGateway(_HttpGateway):
    """sipgate's SMS API: JSON `smsId` (the sender extension), `recipient`, `message`."""

    provider = "sipgate"

    async def send(self, to: str, text: str) -> Accepted:
        """POST /v2/sessions/sms; a 2xx without a body means accepted."""
        await self._post(
            "/v2/sessions/sms", json={"smsId": self._from, "recipient": to, "message": text}
        )
        return Accepted(self.provider)


def sms_gateway(settings: NotifySettings) -> SmsGateway:
    """The gateway `NOTIFY_SMS_PROVIDER` names."""
    if settings.sms_provider is SmsProviderName.SIPGATE:
        return SipgateGateway(settings)
    return TwilioGateway(settings)

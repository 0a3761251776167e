"""SMS over an HTTP gateway: a small provider interface, Twilio's and sipgate's APIs (httpx).

HTTP 429 and 5xx, timeouts and connection errors are transient (a `Retry-After` is passed
on); any other 4xx is permanent. An error reason keeps the status and the vendor's error
code, never the vendor's message, which quotes the number.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from .config import NotifySettings, SmsProviderName
from .transport import Accepted, PermanentSendError, TransientSendError, retry_after_seconds


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


def check_response(provider: str, response: httpx.Response) -> None:
    """Raise the SendError an unsuccessful answer means; nothing for a 2xx."""
    if response.is_success:
        return
    reason = f"{provider} http {response.status_code}{_error_code(response)}"
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        raise TransientSendError(provider, reason, retry_after_s=retry_after)
    raise PermanentSendError(provider, reason)


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

    async def _post(self, path: str, **kwargs: object) -> httpx.Response:
        if not self._configured:
            raise TransientSendError(self.provider, f"{self.provider} credentials not configured")
        try:
            response = await self._client.post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.TimeoutException:
            raise TransientSendError(self.provider, f"{self.provider} timeout") from None
        except httpx.TransportError as exc:
            reason = f"{self.provider} connection failed ({type(exc).__name__})"
            raise TransientSendError(self.provider, reason) from None
        check_response(self.provider, response)
        return response

    async def close(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()


class TwilioGateway(_HttpGateway):
    """Twilio's Messages API: form-encoded `To`, `From` (or `MessagingServiceSid`), `Body`."""

    provider = "twilio"

    async def send(self, to: str, text: str) -> Accepted:
        """POST /2010-04-01/Accounts/{sid}/Messages.json; 201 with the message `sid`."""
        sender = "MessagingServiceSid" if self._from.startswith("MG") else "From"
        response = await self._post(
            f"/2010-04-01/Accounts/{self._account}/Messages.json",
            data={"To": to, sender: self._from, "Body": text},
        )
        try:
            sid = response.json().get("sid")
        except ValueError:
            sid = None
        return Accepted(self.provider, sid if isinstance(sid, str) else None)


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

"""Opaque page cursors that a client can pass back but cannot forge or carry to another scope.

A cursor is `base64url(json(position)).base64url(hmac)`; the MAC covers the position *and*
the scope it was issued for (the tenant and the listing), so a cursor built by hand, edited,
or issued to another tenant is refused with 422 naming the `cursor` query field. The key
comes from `SWITCHBOARD_CURSOR_SECRET`, shared by every replica of a service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from .errors import Unprocessable
from .inputs import check_moment

_FIELD = "query.cursor"
MAX_CURSOR_LENGTH = 500


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs page positions for one service; each cursor is bound to a scope string."""

    def __init__(self, secret: bytes, *, purpose: str) -> None:
        self._key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()

    def _mac(self, scope: str, body: str) -> str:
        message = f"{scope}\x00{body}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest()[:16])

    def encode(self, scope: str, position: list[Any] | None) -> str | None:
        """The cursor of `position` (JSON values; datetimes as ISO strings), or None."""
        if position is None:
            return None
        body = _b64(json.dumps(position, separators=(",", ":")).encode())
        return f"{body}.{self._mac(scope, body)}"

    def decode(self, scope: str, cursor: str | None) -> list[Any] | None:
        """The position of a cursor issued for `scope`; Unprocessable when it is not one."""
        if cursor is None:
            return None
        body, _, mac = cursor.partition(".")
        if len(cursor) > MAX_CURSOR_LENGTH or not mac:
            raise Unprocessable("not a cursor of this listing", field=_FIELD)
        if not hmac.compare_digest(mac, self._mac(scope, body)):
            raise Unprocessable("not a cursor of this listing", field=_FIELD)
        try:
            position = json.loads(_unb64(body))
        except (ValueError, binascii.Error) as exc:
            raise Unprocessable("not a cursor of this listing", field=_FIELD) from exc
        if not isinstance(position, list):
            raise Unprocessable("not a cursor of this listing", field=_FIELD)
        return position


def time_and_id(position: list[Any] | None) -> tuple[datetime, str] | None:
    """A `[iso time, id]` position as (aware datetime, id); Unprocessable if it is not one."""
    if position is None:
        return None
    try:
        moment, key = position
        parsed = check_moment(datetime.fromisoformat(moment))
    except (TypeError, ValueError) as exc:
        raise Unprocessable("not a cursor of this listing", field=_FIELD) from exc
    if not isinstance(key, str):
        raise Unprocessable("not a cursor of this listing", field=_FIELD)
    return parsed, key


def time_and_id_position(moment: datetime, key: str) -> list[Any]:
    """The JSON position of (time, id), as `time_and_id` reads it back."""
    return [moment.isoformat(), key]

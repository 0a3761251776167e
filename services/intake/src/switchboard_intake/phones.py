"""Phone numbers as people write them, turned into E.164 with `phonenumbers`."""

from __future__ import annotations

import phonenumbers

from switchboard_platform.errors import Unprocessable

DEFAULT_REGION = "DE"
"""Numbers without a country code are German ones: "0241 1234567" is +492411234567."""

MAX_INPUT_LENGTH = 40


class InvalidPhoneNumber(Unprocessable, ValueError):
    """A phone number that is not a valid, dialable number.

    It is a `ValueError` too, so a pydantic validator that raises it reports the field at
    fault the same way as any other validation error.
    """


def to_e164(raw: str, *, field: str | None = None, region: str = DEFAULT_REGION) -> str:
    """Return `raw` in E.164 notation (e.g. "+492411234567"), or raise InvalidPhoneNumber."""
    text = raw.strip()
    if not text or len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber(f"not a phone number: {_shown(text)}", field=field)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {_shown(text)}", field=field) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"not a valid phone number: {_shown(text)}", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _shown(text: str) -> str:
    return repr(text[:MAX_INPUT_LENGTH])

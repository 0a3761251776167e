"""What every service accepts from outside, and how: the input types of request bodies.

The rules, decided once for all services (issue 8, item 8; docs/decisions/0010):
- text is NFC-normalised, so a search for a composed name finds a decomposed one;
- NUL and other control characters, lone surrogates and bidirectional overrides are
  refused (422 naming the field): they are never part of a name or a note, and they can
  hide or reorder what a reader sees; free text keeps line breaks and tabs;
- times must carry a UTC offset and lie between 1900 and 2200 once in UTC;
- phone numbers are turned into E.164 (German notation accepted); SMS recipients must be
  mobile numbers, never premium-rate, shared-cost or other service numbers;
- e-mail addresses are checked by `email-validator` (syntax only, no DNS);
- links are `http(s)` and never point at loopback, private, link-local or metadata hosts.

Error messages name the rule, never the value (a 422 must not repeat personal data).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, AwareDatetime, StringConstraints

from .domain_errors import Unprocessable

__all__ = [
    "Day",
    "Email",
    "FreeText",
    "InvalidInput",
    "Line",
    "MobileNumber",
    "Moment",
    "Name",
    "PhoneNumber",
    "PublicLink",
    "check_email",
    "check_moment",
    "check_public_link",
    "clean_line",
    "clean_text",
    "to_e164",
    "to_mobile_e164",
]

DEFAULT_REGION = "DE"
"""Numbers without a country code are German ones: "0241 1234567" is +492411234567."""
MAX_PHONE_INPUT = 40
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = re.compile(r"\r\n?")


class InvalidInput(Unprocessable, ValueError):
    """An input that breaks a rule above; a `ValueError` too, so pydantic names the field."""


def _check_characters(text: str, *, multiline: bool) -> str:
    for char in text:
        if "\ud800" <= char <= "\udfff":
            raise InvalidInput("contains an invalid character (a lone surrogate)")
        if char in _BIDI_CONTROLS:
            raise InvalidInput("contains a bidirectional override character")
        if unicodedata.category(char) == "Cc" and not (multiline and char in "\n\t"):
            raise InvalidInput("contains a control character")
    return unicodedata.normalize("NFC", text)


def clean_line(text: str) -> str:
    """One line of text (a name, a title): NFC, no control or bidi-override characters."""
    return _check_characters(text, multiline=False)


def clean_text(text: str) -> str:
    """Free text (a concern, a note): as `clean_line`, but line breaks and tabs stay."""
    return _check_characters(_LINE_BREAKS.sub("\n", text), multiline=True)


def check_moment(moment: datetime) -> datetime:
    """An aware time between 1900 and 2200, in UTC; InvalidInput otherwise."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("needs a UTC offset, e.g. 2026-05-04T10:15:00+02:00")
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput("lies outside the years 1900 to 2200") from exc
    if not EARLIEST <= in_utc < LATEST:
        raise InvalidInput("lies outside the years 1900 to 2200")
    return in_utc


def _parse_phone(raw: str, region: str) -> phonenumbers.PhoneNumber:
    text = raw.strip()
    if not text or len(text) > MAX_PHONE_INPUT:
        raise InvalidInput("not a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("not a valid phone number")
    return number


def to_e164(raw: str, *, field: str | None = None, region: str = DEFAULT_REGION) -> str:
    """`raw` in E.164 notation (e.g. "+492411234567"), or InvalidInput naming `field`."""
    try:
        number = _parse_phone(raw, region)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=field) from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


BUSINESS_NUMBERS_REMEMBERED = 1024
"""How many of the businesses' own numbers (`to_business_e164`) a process keeps parsed."""


@functools.lru_cache(maxsize=BUSINESS_NUMBERS_REMEMBERED)
def to_business_e164(raw: str) -> str:
    """`to_e164` for a client business's own numbers (the one a call was dialed on or
    forwarded from): a deployment has few, and each call names them again, so their parse
    is remembered. Only for those: a caller's number is personal data, parsed per request
    and kept nowhere (a refused number is never remembered either: it raises)."""
    return to_e164(raw)


_SMS_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def to_mobile_e164(raw: str, *, field: str | None = None, region: str = DEFAULT_REGION) -> str:
    """A number that can receive SMS, in E.164: mobile, never premium-rate or a service number."""
    e164 = to_e164(raw, field=field, region=region)
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    if kind not in _SMS_TYPES:
        raise InvalidInput("not a mobile number (premium-rate and service numbers are refused)")
    return e164


EMAIL_MAX_LENGTH = 200
"""What the events carry of an address (the contracts' `ShortText`): SMTP allows 254, but an
address the events cannot carry must be refused at the door (422), not fail later (500)."""


def check_email(raw: str, *, field: str | None = None) -> str:
    """The address normalised (domain lower-cased, IDNA), or InvalidInput naming `field`."""
    text = raw.strip()
    if len(text) > EMAIL_MAX_LENGTH:
        raise InvalidInput(
            f"an e-mail address of at most {EMAIL_MAX_LENGTH} characters", field=field
        )
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput("not an e-mail address", field=field) from exc
    return str(checked.normalized)


_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast and reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(address.is_global) and not address.is_multicast


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as one means, in every form a resolver accepts: also the
    short and octal or hex IPv4 forms (`127.1`, `0x7f.1`, `0177.0.0.1`, `10.1`) that
    `ipaddress` does not parse but `getaddrinfo`, and so every HTTP client, does."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_public_link(raw: str, *, require_https: bool = False) -> str:
    """An http(s) URL whose host is a public name or address; InvalidInput otherwise.

    Names are not resolved here (a link that is stored, not fetched); a service that fetches
    a URL resolves it again when it sends (see crm-sync's SSRF guard).
    """
    text = raw.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidInput("not a valid URL") from exc
    allowed = ("https",) if require_https else ("http", "https")
    if parts.scheme not in allowed or not host:
        raise InvalidInput(f"must be an {' or '.join(allowed)} URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("must not carry credentials")
    address = _literal_address(host)
    if address is None:
        name = host.rstrip(".").lower()
        if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
            raise InvalidInput("must not point at a local or internal host") from None
        if name in _METADATA_HOSTS or "." not in name:
            raise InvalidInput("must not point at a local or internal host") from None
        return text
    if not is_public_address(address):
        raise InvalidInput("must not point at a loopback, private or link-local address")
    return text


Moment = Annotated[AwareDatetime, AfterValidator(check_moment)]
"""A point in time with a UTC offset, within 1900-2200, stored in UTC."""


def check_day(day: date) -> date:
    """A calendar day between 1900 and 2199; InvalidInput otherwise (a date in year 9999
    would stop a retention clock that starts from it from ever running out)."""
    if not EARLIEST.year <= day.year < LATEST.year:
        raise InvalidInput("lies outside the years 1900 to 2200")
    return day


Day = Annotated[date, AfterValidator(check_day)]
"""A calendar day within 1900-2200."""
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(clean_line),
]
Line = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(clean_line)
]
FreeText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=5000), AfterValidator(clean_text)
]
PhoneNumber = Annotated[str, StringConstraints(max_length=MAX_PHONE_INPUT), AfterValidator(to_e164)]
MobileNumber = Annotated[
    str, StringConstraints(max_length=MAX_PHONE_INPUT), AfterValidator(to_mobile_e164)
]
Email = Annotated[
    str, StringConstraints(max_length=EMAIL_MAX_LENGTH + 54), AfterValidator(check_email)
]
"""Spaces around an address are stripped before its length is checked (`check_email`)."""
PublicLink = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=2000),
    AfterValidator(check_public_link),
]

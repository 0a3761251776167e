"""How times, durations and numbers read in the client's messages: German, Europe/Berlin."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers

BERLIN = ZoneInfo("Europe/Berlin")
_WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")


def berlin_time(moment: datetime) -> str:
    """`Freitag, 14.03.2025, 10:30 Uhr`: the call time as the client reads it."""
    local = moment.astimezone(BERLIN)
    return f"{_WEEKDAYS[local.weekday()]}, {local:%d.%m.%Y}, {local:%H:%M} Uhr"


def short_berlin_time(moment: datetime) -> str:
    """`14.03. 10:30`: the call time in an SMS."""
    return f"{moment.astimezone(BERLIN):%d.%m. %H:%M}"


def spoken_duration(seconds: int | None) -> str | None:
    """`1 Min. 35 Sek.`, or None when unknown."""
    if seconds is None:
        return None
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} Sek."
    return f"{minutes} Min. {rest} Sek." if rest else f"{minutes} Min."


def display_phone(e164: str) -> str:
    """A number as people write it: `+49 1521 1014450` (E.164 if it cannot be parsed)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def one_line(text: str) -> str:
    """`text` with every run of whitespace and line breaks as one space (header-safe)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())

"""The SMS of a call note: at most two segments; the concern is cut, the callback number never.

Segments follow GSM 03.38: a text of the GSM 7-bit alphabet (German umlauts and ß are in
it) takes 160 septets in one segment, 153 per segment when split, and the extension
characters (€, [, ], …) take two; any other character makes the whole text UCS-2, 70 code
units in one segment, 67 when split.
"""

from __future__ import annotations

import math

from .domain import NoteCopy
from .formatting import one_line, short_berlin_time

MAX_SEGMENTS = 2
ELLIPSIS = "..."
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    """Whether `text` can be sent in the GSM 7-bit alphabet."""
    return all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in text)


def segments(text: str) -> int:
    """How many SMS segments `text` takes."""
    if is_gsm7(text):
        units = len(text) + sum(c in _GSM_EXTENSION for c in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def fits(text: str) -> bool:
    """Whether `text` takes at most MAX_SEGMENTS segments."""
    return segments(text) <= MAX_SEGMENTS


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - len(ELLIPSIS), 1)].rstrip() + ELLIPSIS


def fit_tail(head: str, tail: str) -> str:
    """`head` + as much of `tail` as fits (cut with an ellipsis); `head` is never cut."""
    if fits(head + tail):
        return head + tail
    low, high = 0, len(tail)
    while low < high:  # the longest prefix of the tail that still fits
        middle = (low + high + 1) // 2
        if fits(head + _cut(tail, middle)):
            low = middle
        else:
            high = middle - 1
    return head + (_cut(tail, low) if low > len(ELLIPSIS) else "")


def compose_sms(note: NoteCopy, *, secret: bool, link: str) -> str:
    """The SMS telling the client about `note`; no caller or concern when `secret` (R-SEC-3)."""
    when = short_berlin_time(note.started_at)
    contact = one_line(note.contact_person) if note.contact_person else None
    if secret or note.caller is None:
        for limit in (200, 40, 15):
            target = f" für {_cut(contact, limit)}" if contact else ""
            text = f"Neuer Anruf {when}{target}. Notiz: {link}"
            if fits(text):
                return text
        return text
    caller = note.caller
    concern = one_line(note.concern or "")
    name, company = one_line(caller.name), one_line(caller.company or "")
    attempts = ((200, 200, True), (200, 200, False), (40, 40, False), (15, 15, False))
    for name_limit, contact_limit, with_company in attempts:
        who = _cut(name, name_limit) + (
            f" ({_cut(company, 40)})" if with_company and company else ""
        )
        target = f" für {_cut(contact, contact_limit)}" if contact else ""
        head = f"Anruf {when}{target}: {who}, Rückruf {caller.phone}."
        if fits(head + (" " if concern else "")):
            return fit_tail(head, f" {concern}" if concern else "")
    return head  # names cut to the bone; the callback number is always whole

"""The SMS text: two segments at most, the concern cut, the callback number never (R-NOTE-1)."""

from __future__ import annotations

import datetime as dt

import pytest

from switchboard_contracts.common import Caller
from switchboard_notify.domain import NoteCopy
from switchboard_notify.sms_message import compose_sms, fits, is_gsm7, segments

LINK = "https://portal.example.de/notes/n-1"


def _note(**changes: object) -> NoteCopy:
    values: dict[str, object] = {
        "note_id": "n-1",
        "tenant_id": "t",
        "call_id": "c",
        "caller": Caller(name="Jürgen Weiß", phone="+4915211014450", company="Bäckerei Groß"),
        "concern": "Bitte um Rückruf",
        "contact_person": "Frau Meyer",
        "started_at": dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC),
    }
    values.update(changes)
    return NoteCopy(**values)  # type: ignore[arg-type]


def test_segments_follow_gsm_7bit_and_ucs2_limits() -> None:
    assert is_gsm7("Jürgen Weiß, Öffnungszeiten äöüß")
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("a" * 306) == 2
    assert segments("a" * 307) == 3
    assert segments("€" * 80) == 1
    assert segments("€" * 81) == 2
    assert not is_gsm7("Łukasz")
    assert segments("Ł" * 70) == 1
    assert segments("Ł" * 71) == 2
    assert segments("Ł" * 135) == 3


def test_r_note_1_short_note_is_sent_whole_in_berlin_time() -> None:
    text = compose_sms(_note(), secret=False, link=LINK)
    assert text == (
        "Anruf 01.07. 10:00 für Frau Meyer: Jürgen Weiß (Bäckerei Groß), "
        "Rückruf +4915211014450. Bitte um Rückruf"
    )
    assert segments(text) == 1


@pytest.mark.parametrize("filler", ["Heizung defekt. ", "Łódź ", "€ "])
def test_r_note_1_long_concern_is_cut_but_the_callback_number_never(filler: str) -> None:
    text = compose_sms(_note(concern=filler * 200), secret=False, link=LINK)
    assert fits(text)
    assert "Rückruf +4915211014450." in text
    assert text.endswith("...")
    assert segments(text) == 2  # it uses the room it has


def test_r_note_1_overlong_names_are_cut_before_the_number_is() -> None:
    note = _note(
        caller=Caller(name="N" * 200, phone="+4915211014450", company="C" * 200),
        contact_person="P" * 200,
        concern="x" * 500,
    )
    text = compose_sms(note, secret=False, link=LINK)
    assert fits(text)
    assert "+4915211014450" in text


def test_r_sec_3_secret_sms_has_no_caller_and_no_concern() -> None:
    text = compose_sms(_note(), secret=True, link=LINK)
    assert text == f"Neuer Anruf 01.07. 10:00 für Frau Meyer. Notiz: {LINK}"
    for secret in ("Jürgen", "Weiß", "Bäckerei", "Rückruf", "1014450"):
        assert secret not in text

"""Phone numbers in German and international notation become E.164; others are refused."""

from __future__ import annotations

import pytest

from switchboard_intake.phones import InvalidPhoneNumber, to_e164
from switchboard_platform.errors import Unprocessable


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("0241 1234567", "+492411234567"),
        ("+49 (152) 11014450", "+4915211014450"),
        ("0152-11014450", "+4915211014450"),
        ("0049 241 1234567", "+492411234567"),
        ("+492411234567", "+492411234567"),
        ("  0241/1234567 ", "+492411234567"),
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_written_numbers_become_e164(written, e164):
    assert to_e164(written) == e164


@pytest.mark.parametrize(
    "written", ["", "   ", "abc", "12345", "+49 241", "0" * 41, "+999 1234567"]
)
def test_invalid_numbers_are_refused(written):
    with pytest.raises(InvalidPhoneNumber):
        to_e164(written)


def test_refusal_names_the_field_and_is_a_value_error_for_pydantic():
    with pytest.raises(InvalidPhoneNumber) as caught:
        to_e164("12345", field="caller.phone")

    assert caught.value.field == "caller.phone"
    assert isinstance(caught.value, Unprocessable)
    assert isinstance(caught.value, ValueError)

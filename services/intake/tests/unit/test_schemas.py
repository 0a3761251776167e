"""Request bodies turn what people write into domain values, naming the field they refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from switchboard_intake.schemas import CallCreate, RecipientIn, TenantUpdate
from switchboard_platform.inputs import to_business_e164

CALL = {
    "tenant_id": "t-1",
    "caller": {"name": "Erika", "phone": "0170 1234567"},
    "concern": "Rückruf",
    "started_at": "2025-03-04T10:15:00+01:00",
}


def locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str | int, ...]]:
    return [e["loc"] for e in exc.value.errors()]


def test_recipient_address_is_normalised_for_its_channel():
    sms = RecipientIn(channel="sms", address="0152 11014450")
    email = RecipientIn(channel="email", address=" Info@Kanzlei.DE ")

    assert (sms.address, email.address) == (
        "+4915211014450",
        "info@kanzlei.de",
    )  # email-validator lower-cases role names


def test_recipient_address_that_does_not_fit_its_channel_is_refused():
    with pytest.raises(ValidationError) as caught:
        RecipientIn(channel="email", address="0152 11014450")

    assert locs(caught) == [("address",)]


def test_update_lists_only_the_fields_it_sets():
    update = TenantUpdate.model_validate({"notes": None, "forwarding_numbers": ["0241 1234567"]})

    assert update.changes() == {"notes": None, "forwarding_numbers": ["+492411234567"]}


@pytest.mark.parametrize("field", ["name", "industry", "contract_status", "recipients"])
def test_update_refuses_null_for_a_required_field(field):
    with pytest.raises(ValidationError) as caught:
        TenantUpdate.model_validate({field: None})

    assert locs(caught) == [(field,)]


def test_r_rec_1_consent_must_be_a_real_boolean():
    with pytest.raises(ValidationError) as caught:
        CallCreate.model_validate({**CALL, "recording": {"consent": "yes"}})

    assert locs(caught) == [("recording", "consent")]


def test_call_details_leave_attribution_to_the_use_case():
    details = CallCreate.model_validate({**CALL, "dialed_number": "0241 1234567"}).details()

    assert details.caller.phone == "+491701234567"
    assert "dialed_number" not in details.model_dump()


def test_the_business_numbers_parse_is_remembered_but_never_a_callers():
    to_business_e164.cache_clear()
    first = CallCreate.model_validate(
        {**CALL, "dialed_number": "0241 1234567", "forwarded_from": "+49 241 7654321"}
    )
    again = CallCreate.model_validate({**CALL, "dialed_number": "0241 1234567"})

    assert (first.dialed_number, first.forwarded_from) == ("+492411234567", "+492417654321")
    assert again.dialed_number == "+492411234567"
    assert first.caller.phone == "+491701234567"
    remembered = to_business_e164.cache_info()
    assert (remembered.currsize, remembered.hits) == (2, 1)  # the caller's is not in there

    for _ in range(2):  # a refused number is refused every time, and not remembered
        with pytest.raises(ValidationError) as caught:
            CallCreate.model_validate({**CALL, "dialed_number": "12"})
        assert locs(caught) == [("dialed_number",)]
    assert to_business_e164.cache_info().currsize == 2

"""The retention rules without I/O: orders, holds, deadlines, statuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from switchboard_contracts.categories import DataCategory
from switchboard_contracts.retention import CategoryScope, LegalHold, TenantScope
from switchboard_platform.errors import Conflict, Unprocessable
from switchboard_retention.domain import (
    Deadline,
    DsrStatus,
    Hold,
    SweepStatus,
    category_orders,
    check_as_of,
    check_extension,
    check_received,
    deadline,
    dsr_status,
    due_at,
    sweep_status,
    tenant_orders,
)

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
HOLD = LegalHold(hold_id="h", reason="audit", tenant_id="t1")


def test_r_ret_6_a_sweep_orders_every_category_with_its_cutoff_and_the_holds() -> None:
    orders = category_orders("s1", NOW, [HOLD], tenant_id="t1")
    scopes = {o.scope.category: o.scope for o in orders if isinstance(o.scope, CategoryScope)}
    assert set(scopes) == set(DataCategory)
    assert scopes[DataCategory.CALL_DATA].cutoff == NOW - timedelta(days=60)
    assert all(o.holds == (HOLD,) and o.scope.tenant_id == "t1" for o in orders)  # type: ignore[union-attr]
    assert len({o.request_id for o in orders}) == len(orders)


def test_r_ret_3_offboarded_tenants_get_an_order_with_only_their_holds() -> None:
    other = LegalHold(hold_id="o", reason="audit", tenant_id="t9")
    (order,) = tenant_orders("s1", NOW, ["t1"], [HOLD, other])
    assert order.scope == TenantScope(kind="tenant", tenant_id="t1")
    assert order.holds == (HOLD,)


def test_a_future_sweep_is_refused_in_production_only() -> None:
    later = NOW + timedelta(days=61)
    check_as_of(later, NOW, production=False)
    with pytest.raises(Unprocessable) as refused:
        check_as_of(later, NOW, production=True)
    assert refused.value.field == "as_of"


def test_r_ret_5_a_hold_must_cover_something_and_ends_on_its_day() -> None:
    with pytest.raises(Unprocessable):
        Hold(id="h", reason="r", until=date(2026, 6, 1))
    hold = Hold(id="h", reason="r", until=date(2026, 6, 1), category="call_data")
    assert hold.active_on(date(2026, 6, 1))
    assert not hold.active_on(date(2026, 6, 2))
    assert hold.touches_tenant("any")
    assert hold.as_contract().category == DataCategory.CALL_DATA


def test_sweep_status_waits_for_every_answer_until_its_deadline() -> None:
    expected = ["o1|notes", "o1|intake"]
    assert sweep_status(expected, ["o1|notes"], timed_out=False) is SweepStatus.RUNNING
    assert sweep_status(expected, ["o1|notes"], timed_out=True) is SweepStatus.INCOMPLETE
    assert sweep_status(expected, [*expected, "x|y"], timed_out=True) is SweepStatus.COMPLETED


def test_r_dsr_t_a_request_is_due_one_month_after_receipt_and_extends_to_three() -> None:
    received = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    assert due_at(received) == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert due_at(received, 2) == datetime(2026, 4, 30, 9, 0, tzinfo=UTC)
    check_extension(status="open", extended=1, months=1, received_at=received, now=received)
    with pytest.raises(Unprocessable) as too_long:
        check_extension(status="open", extended=1, months=2, received_at=received, now=received)
    assert too_long.value.field == "months"
    with pytest.raises(Unprocessable):  # decided after the first month: too late
        check_extension(
            status="open",
            extended=0,
            months=1,
            received_at=received,
            now=received + timedelta(days=40),
        )
    with pytest.raises(Conflict):
        check_extension(
            status="completed", extended=0, months=1, received_at=received, now=received
        )


def test_r_dsr_t_deadline_states() -> None:
    due = NOW + timedelta(days=10)
    assert deadline(due, NOW, near_days=7) is Deadline.OK
    assert deadline(due, NOW + timedelta(days=4), near_days=7) is Deadline.NEAR_DUE
    assert deadline(due, due, near_days=7) is Deadline.OVERDUE


def test_a_request_is_completed_when_every_service_answered_and_nothing_was_kept() -> None:
    expected = ["intake", "notes"]
    assert (
        dsr_status(expected=expected, answered=["notes"], kept_anything=False, timed_out=False)
        is DsrStatus.OPEN
    )
    assert (
        dsr_status(expected=expected, answered=["notes"], kept_anything=False, timed_out=True)
        is DsrStatus.PARTIALLY_COMPLETED
    )
    assert (
        dsr_status(expected=expected, answered=expected, kept_anything=False, timed_out=True)
        is DsrStatus.COMPLETED
    )
    assert (
        dsr_status(expected=expected, answered=expected, kept_anything=True, timed_out=False)
        is DsrStatus.PARTIALLY_COMPLETED
    )


def test_r_dsr_t_a_request_is_received_between_the_gdpr_and_now() -> None:
    """A request entered late keeps its day of receipt (and shows overdue), but none was
    received before the GDPR applied, nor later than now."""
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    check_received(datetime(2018, 5, 25, tzinfo=UTC), now)
    check_received(now - timedelta(days=400), now)
    check_received(now + timedelta(minutes=4), now)  # clock skew
    for refused in (datetime(2018, 5, 24, 23, 59, tzinfo=UTC), now + timedelta(hours=1)):
        with pytest.raises(Unprocessable) as caught:
            check_received(refused, now)
        assert caught.value.field == "received_at"

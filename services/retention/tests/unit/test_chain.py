"""The receipt chain detects any change, removal or reordering (R-RET-6)."""

from __future__ import annotations

from typing import Any

from switchboard_retention.chain import GENESIS, ChainCheck, receipt_hash


def _chain(n: int) -> list[dict[str, Any]]:
    receipts, prev = [], GENESIS
    for seq in range(1, n + 1):
        doc: dict[str, Any] = {
            "_id": seq,
            "seq": seq,
            "request_id": f"r{seq}",
            "service": "notes",
            "event_id": f"e{seq}",
            "erased": [{"category": "call_data", "collection": "notes", "count": seq}],
            "retained": [],
            "completed_at": "2026-05-04T10:00:00+00:00",
            "received_at": "2026-05-04T10:00:01+00:00",
            "prev_hash": prev,
        }
        doc["hash"] = prev = receipt_hash(doc, prev)
        receipts.append(doc)
    return receipts


def _verify(receipts: list[dict[str, Any]]) -> Any:
    check = ChainCheck()
    for doc in receipts:
        if not check.add(doc):
            break
    return check.verdict()


def test_r_ret_6_an_untouched_chain_verifies() -> None:
    verdict = _verify(_chain(5))
    assert (verdict.valid, verdict.count) == (True, 5)


def test_r_ret_6_a_changed_count_breaks_the_chain_at_that_receipt() -> None:
    receipts = _chain(5)
    receipts[2]["erased"][0]["count"] = 0
    verdict = _verify(receipts)
    assert (verdict.valid, verdict.count, verdict.broken_at) == (False, 2, 3)
    assert "hash" in (verdict.reason or "")


def test_r_ret_6_a_removed_or_rehashed_receipt_is_found() -> None:
    receipts = _chain(4)
    del receipts[1]
    assert _verify(receipts).broken_at == 2
    forged = _chain(3)
    forged[1]["erased"] = []
    forged[1]["hash"] = receipt_hash(forged[1], forged[1]["prev_hash"])  # rehashed in place
    assert _verify(forged).broken_at == 3  # the next receipt no longer points at it

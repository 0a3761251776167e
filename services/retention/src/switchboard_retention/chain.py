"""The receipt chain (R-RET-6): each receipt carries the hash of the one before it.

A receipt's hash covers its canonical JSON (sorted keys, no whitespace) and the previous
receipt's hash, so changing, removing or reordering any stored receipt breaks every hash
after it. Times are kept as ISO strings, so what is hashed is exactly what is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
HASHED = (
    "seq",
    "request_id",
    "service",
    "event_id",
    "erased",
    "retained",
    "completed_at",
    "received_at",
)


def receipt_hash(receipt: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 over the receipt's hashed fields and the previous hash."""
    body = {name: receipt.get(name) for name in HASHED} | {"prev_hash": prev_hash}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The chain's state: valid with n receipts, or where and why it breaks."""

    valid: bool
    count: int
    broken_at: int | None = None
    reason: str | None = None


class ChainCheck:
    """Walks receipts in `seq` order and finds the first one that does not fit."""

    def __init__(self) -> None:
        self.count = 0
        self._prev = GENESIS
        self._verdict: Verdict | None = None

    def add(self, receipt: Mapping[str, Any]) -> bool:
        """Check the next receipt; False once the chain is broken (stop reading then)."""
        if self._verdict is not None:
            return False
        seq = receipt.get("_id")
        expected_seq = self.count + 1
        problem = None
        if seq != expected_seq:
            problem = f"receipt {expected_seq} is missing"
        elif receipt.get("prev_hash") != self._prev:
            problem = "does not point at the receipt before it"
        elif receipt.get("hash") != receipt_hash({**receipt, "seq": seq}, self._prev):
            problem = "its content does not match its hash"
        if problem is not None:
            self._verdict = Verdict(False, self.count, expected_seq, problem)
            return False
        self.count += 1
        self._prev = str(receipt["hash"])
        return True

    def verdict(self) -> Verdict:
        """The result after the last receipt read."""
        return self._verdict or Verdict(True, self.count)

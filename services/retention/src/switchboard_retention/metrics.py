"""Prometheus metrics of the retention service (labels: service, category, status, deadline)."""

from prometheus_client import Counter, Gauge

SWEEPS = Gauge(
    "switchboard_retention_sweeps",
    "Sweeps by status; `incomplete`: a participant did not answer in time",
    ["status"],
)
DSR_UNFINISHED = Gauge(
    "switchboard_retention_dsr_unfinished",
    "Data-subject requests not completed, by deadline: ok, near_due, overdue (R-DSR-T)",
    ["deadline"],
)
RECEIPTS = Counter(
    "switchboard_retention_receipts_total", "Erasure receipts stored in the chain", ["service"]
)
ERASED = Counter(
    "switchboard_retention_erased_records_total",
    "Records the services reported erased",
    ["service", "category"],
)
RETAINED = Counter(
    "switchboard_retention_retained_records_total",
    "Records in scope the services kept under a legal hold or duty",
    ["service", "category"],
)
CHAIN_VALID = Gauge(
    "switchboard_retention_receipt_chain_valid",
    "1 if the last verification found the chain intact, 0 if broken (NaN: not verified yet)",
)
CHAIN_VALID.set(float("nan"))

"""The run's verdict against the issue's targets, and its figures as a Markdown table."""

from __future__ import annotations

from typing import Any

THROUGHPUT_RATIO_TARGET = 0.5
P99_TARGET_MS = 100.0
P99_TARGET_RATE = 100.0


def sustained(step: dict[str, Any]) -> float:
    """Calls per second carried end to end: the lower of accepted and notes produced."""
    return float(min(step["accepted_per_s"], step["notes_per_s"]))


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Throughput ratio to the baseline and p99 at 100 calls/s, each against its target."""
    out: dict[str, Any] = {}
    suite = result.get("suite", {})
    baseline = result.get("baseline")
    if "max" in suite:
        out["suite_max_sustained_per_s"] = round(sustained(suite["max"]), 1)
        steady = [s for s in suite["steps"] if s["sustained"]]
        out["highest_sustained_steady_rate_per_s"] = max(
            (s["offered_per_s"] for s in steady), default=None
        )
    if baseline and "max" in suite:
        out["baseline_max_per_s"] = round(sustained(baseline["max"]), 1)
        ratio = sustained(suite["max"]) / max(sustained(baseline["max"]), 1e-9)
        out["throughput_ratio"] = round(ratio, 2)
        out["throughput_target_met"] = ratio >= THROUGHPUT_RATIO_TARGET
    at_target = [s for s in suite.get("steps", []) if s["offered_per_s"] == P99_TARGET_RATE]
    if at_target:
        step = at_target[0]
        out["p99_topic_ms_at_100"] = step["topic_ms"]["p99"]
        out["p99_api_ms_at_100"] = step["api_ms"]["p99"]
        worst = max(v for v in (step["topic_ms"]["p99"], step["api_ms"]["p99"]) if v is not None)
        out["p99_target_met"] = worst < P99_TARGET_MS
    return out


def _ms(figures: dict[str, Any]) -> str:
    return " / ".join(
        "-" if figures[k] is None else f"{figures[k]:g}" for k in ("p50", "p95", "p99")
    )


def _row(name: str, step: dict[str, Any]) -> str:
    cpu = step.get("cpu_cores", {})
    cores = ", ".join(
        f"{k} {cpu[k]:.2f}"
        for k in ("intake", "notes", "tansu", "nx-27017", "bench-load")
        if k in cpu
    )
    rss = step.get("rss_mib", {})
    mem = ", ".join(f"{k} {rss[k]:g}" for k in ("intake", "notes") if rss.get(k) is not None)
    return (
        f"| {name} | {step['accepted_per_s']:g} | {step['notes_per_s']:g} | "
        f"{step['backlog_growth_per_s']:+g} | {'yes' if step['sustained'] else 'no'} | "
        f"{_ms(step['topic_ms'])} | {_ms(step['api_ms'])} (n={step['api_ms']['n']}) | "
        f"{cores} | {mem} |"
    )


def markdown(result: dict[str, Any]) -> str:
    """The figures table (suite steps, then the baseline) and the verdict."""
    lines = [
        "| step | accepted/s | notes/s | backlog Δ/s | sustained | 201→topic ms p50/p95/p99 "
        "| 201→API ms p50/p95/p99 | CPU cores | RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    suite = result.get("suite", {})
    for step in suite.get("steps", []):
        lines.append(_row(step["label"], step))
    for key in ("intake_max", "max", "profiled_max"):
        if key in suite:
            lines.append(_row(suite[key]["label"], suite[key]))
    baseline = result.get("baseline") or {}
    for key, name in (("rate", "baseline 100/s"), ("max", "baseline max")):
        if key in baseline:
            step = {**baseline[key], "api_ms": {"p50": None, "p95": None, "p99": None, "n": 0}}
            lines.append(_row(name, step))
    lines.append("")
    for key, value in verdict(result).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines)

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


_PROCESSES = ("intake", "notes", "nx-27017", "tansu", "bench-load", "baseline")


def _row(name: str, step: dict[str, Any]) -> str:
    per_call = step.get("cpu_ms_per_call", {})
    cpu = ", ".join(f"{k} {per_call[k]:.1f}" for k in _PROCESSES if k in per_call)
    cores = step.get("cpu_cores", {})
    machine = f"{cores.get('machine', 0):.2f} ({cores.get('others', 0):.2f})"
    api = step.get("api_ms")
    api_text = f"{_ms(api)} (n={api['n']})" if api and api["n"] else "-"
    return (
        f"| {name} | {step['accepted_per_s']:g} | {step['notes_per_s']:g} | "
        f"{step['backlog_growth_per_s']:+g} | {'yes' if step['sustained'] else 'no'} | "
        f"{_ms(step['topic_ms'])} | {api_text} | {cpu} | {machine} |"
    )


def markdown(result: dict[str, Any]) -> str:
    """The figures table (suite steps, then the baseline), peak memory and the verdict."""
    lines = [
        "| step | accepted/s | notes/s | backlog Δ/s | sustained "
        "| 201→note.created ms p50/p95/p99 | 201→API ms p50/p95/p99 "
        "| CPU ms per call | machine cores (others) |",
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
            label = f"{name} c={baseline[key]['concurrency']}" if key == "max" else name
            lines.append(_row(label, baseline[key]))
    if "peak_rss_mib" in suite:
        peaks = ", ".join(f"{k} {v:g}" for k, v in suite["peak_rss_mib"].items() if v)
        lines += ["", f"Peak RSS (VmHWM), MiB: {peaks}"]
    lines.append("")
    for key, value in verdict(result).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines)


def main() -> None:
    """Print the table of a stored run: `python -m bench.report bench/results/<run>.json`."""
    import json
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        print(markdown(json.loads(Path(name).read_text())))


if __name__ == "__main__":
    main()

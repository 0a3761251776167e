"""The run's verdict against the issue's targets, and its figures as a Markdown table."""

from __future__ import annotations

from typing import Any

THROUGHPUT_RATIO_TARGET = 0.6
P99_TARGETS_MS = {100.0: 50.0, 200.0: 100.0}
RSS_TARGET_MIB = 120.0
RESTART_TARGETS_S = {"intake_serving_s": 2.0, "notes_consuming_s": 3.0}
SERVICES = ("intake", "notes")


def sustained(step: dict[str, Any]) -> float:
    """Calls per second carried end to end: the lower of accepted and notes produced."""
    return float(min(step["accepted_per_s"], step["notes_per_s"]))


def _step_at(suite: dict[str, Any], rate: float) -> dict[str, Any] | None:
    return next((s for s in suite.get("steps", []) if s["offered_per_s"] == rate), None)


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Every figure the issue sets a target for, each with whether it was met."""
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
        before = sustained(baseline["max"])
        after = sustained(suite["baseline_after"]["max"]) if "baseline_after" in suite else None
        reference = before if after is None else (before + after) / 2
        out["baseline_max_per_s"] = round(reference, 1)
        if after is not None:
            out["baseline_max_before_per_s"] = round(before, 1)
            out["baseline_max_after_per_s"] = round(after, 1)
            out["throughput_ratio_to_before"] = round(sustained(suite["max"]) / before, 2)
        ratio = sustained(suite["max"]) / max(reference, 1e-9)
        out["throughput_ratio"] = round(ratio, 2)
        out["throughput_target_met"] = ratio >= THROUGHPUT_RATIO_TARGET
    for rate, target in P99_TARGETS_MS.items():
        step = _step_at(suite, rate)
        if step is not None:
            p99 = step["topic_ms"]["p99"]
            out[f"p99_topic_ms_at_{rate:g}"] = p99
            out[f"p99_api_ms_at_{rate:g}"] = step["api_ms"]["p99"]
            out[f"p99_target_met_at_{rate:g}"] = p99 is not None and p99 <= target
    peaks = suite.get("peak_rss_mib") or {}
    service_peaks = {k: v for k, v in peaks.items() if k.split("-")[0] in SERVICES and v}
    if service_peaks:
        out["peak_rss_mib"] = max(service_peaks.values())
        out["rss_target_met"] = out["peak_rss_mib"] <= RSS_TARGET_MIB
    restart = suite.get("restart")
    if restart:
        for key, target in RESTART_TARGETS_S.items():
            if key in restart:  # runs before intake_serving_s timed only intake_ready_s
                out[key] = restart[key]
                out[f"{key}_target_met"] = restart[key] <= target
        out["intake_ready_s"] = restart["intake_ready_s"]
        out["notes_ready_s"] = restart["notes_ready_s"]
    pushback = suite.get("backpressure")
    if pushback:
        out["backpressure_accepted_before_503"] = pushback["accepted_before_first_503"]
        out["backpressure_bounded"] = pushback["accepted_before_first_503"] is not None
    imports = result.get("run", {}).get("import_s")
    if imports:
        out["import_s"] = imports
    return out


def median_summary(runs: list[dict[str, Any]]) -> str:
    """The verdict figures of several runs, each as the median over the runs."""
    import statistics

    verdicts = [verdict(r) for r in runs]
    keys = [k for k in verdicts[0] if not isinstance(verdicts[0][k], dict | bool)]
    lines = ["| figure | median | runs |", "| --- | --- | --- |"]
    for key in keys:
        values = [v[key] for v in verdicts if isinstance(v.get(key), int | float)]
        if values:
            shown = ", ".join(f"{x:g}" for x in values)
            lines.append(f"| {key} | {statistics.median(values):g} | {shown} |")
    return "\n".join(lines)


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
    commands = step.get("db_commands_per_call", {})
    db = ", ".join(f"{k} {v['total']:.2f}" for k, v in commands.items() if "total" in v) or "-"
    return (
        f"| {name} | {step['accepted_per_s']:g} | {step['notes_per_s']:g} | "
        f"{step['backlog_growth_per_s']:+g} | {'yes' if step['sustained'] else 'no'} | "
        f"{_ms(step['topic_ms'])} | {api_text} | {cpu} | {db} | {machine} |"
    )


def markdown(result: dict[str, Any]) -> str:
    """The figures table (suite steps, then the baseline), peak memory and the verdict."""
    lines = [
        "| step | accepted/s | notes/s | backlog Δ/s | sustained "
        "| 201→note.created ms p50/p95/p99 | 201→API ms p50/p95/p99 "
        "| CPU ms per call | DB commands per call | machine cores (others) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
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
    if "baseline_after" in suite:
        after = suite["baseline_after"]["max"]
        lines.append(_row(f"baseline max c={after['concurrency']}, after", after))
    broken_down = [
        (step["label"], step["db_commands_per_call"])
        for step in (*suite.get("steps", []), suite.get("max") or {})
        if step.get("db_commands_per_call")
    ]
    if broken_down:
        lines += ["", "DB commands per call, by command and collection:"]
        for label, commands in broken_down:
            parts = "; ".join(
                f"{name} " + ", ".join(f"{k} {v:g}" for k, v in per.items() if k != "total")
                for name, per in commands.items()
            )
            lines.append(f"- {label}: {parts}")
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

"""Percentiles, rates and backlog trend of one load step."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# One call attempt: (call id or "", tenant id or "", due/sent at, answered at, HTTP status or 0)
CallRecord = tuple[str, str, float, float, int]


def percentiles_ms(seconds: Iterable[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds (nearest rank)."""
    values = sorted(seconds)
    result: dict[str, float | int | None] = {"n": len(values)}
    for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        if values:
            rank = max(1, math.ceil(p / 100 * len(values)))
            result[name] = round(values[rank - 1] * 1000, 1)
        else:
            result[name] = None
    return result


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0.0 for fewer than two points)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def backlog_series(
    accepted: Sequence[float], noted: Sequence[float], start: float, end: float, step_s: float = 0.5
) -> list[tuple[float, float]]:
    """(seconds since start, accepted-but-not-yet-noted calls) every `step_s` in the window."""
    acc, note = sorted(accepted), sorted(noted)
    series = []
    i = j = 0
    t = start + step_s
    while t <= end + 1e-9:
        while i < len(acc) and acc[i] <= t:
            i += 1
        while j < len(note) and note[j] <= t:
            j += 1
        series.append((round(t - start, 3), float(i - j)))
        t += step_s
    return series


def summarize_step(
    calls: Sequence[CallRecord],
    started: float,
    window_end: float,
    arrivals: Mapping[str, float],
    offered_per_s: float | None,
) -> dict[str, Any]:
    """Throughput, latency and backlog trend of one step's calls and their notes."""
    ok = [c for c in calls if c[4] == 201]
    accepted_at = [c[3] for c in ok]
    last_accept = max(accepted_at, default=window_end)
    span = max(last_accept - started, 1e-9)
    noted = [arrivals[c[0]] for c in ok if c[0] in arrivals]
    in_window = [t for t in noted if t <= window_end]
    series = backlog_series(accepted_at, noted, started, window_end)
    half = [p for p in series if p[0] >= (window_end - started) / 2]
    trend = slope(half)
    accepted_per_s = len(ok) / span
    keeps_up = offered_per_s is None or accepted_per_s >= 0.95 * offered_per_s
    growth_limit = max(2.0, 0.05 * accepted_per_s)
    return {
        "offered_per_s": offered_per_s,
        "attempts": len(calls),
        "accepted": len(ok),
        "refused": sum(1 for c in calls if c[4] not in (0, 201)),
        "errors": sum(1 for c in calls if c[4] == 0),
        "accepted_per_s": round(accepted_per_s, 1),
        "notes_per_s": round(len(in_window) / max(window_end - started, 1e-9), 1),
        "backlog_at_end": series[-1][1] if series else 0,
        "backlog_growth_per_s": round(trend, 1),
        "sustained": keeps_up and trend <= growth_limit,
        "missing_notes": len(ok) - len(noted),
        "drain_after_last_accept_ms": round((max(noted, default=last_accept) - last_accept) * 1000),
        "http_ms": percentiles_ms(c[3] - c[2] for c in ok),
        "topic_ms": percentiles_ms(arrivals[c[0]] - c[3] for c in ok if c[0] in arrivals),
    }


def commands_per_call(
    commands: Mapping[str, Mapping[str, float]], calls: float
) -> dict[str, dict[str, float]]:
    """Database commands each service sent per call carried end to end: `total`, and by
    "command collection" (those of at least 0.01 per call)."""
    if calls <= 0:
        return {}
    out: dict[str, dict[str, float]] = {}
    for name, counts in commands.items():
        if not any(counts.values()):  # not counted (MONGODB_COMMAND_METRICS off)
            continue
        per = {k: round(v / calls, 2) for k, v in sorted(counts.items()) if v / calls >= 0.01}
        out[name] = {"total": round(sum(counts.values()) / calls, 2), **per}
    return out


def cpu_ms_per_call(cores: Mapping[str, float], calls_per_s: float) -> dict[str, float]:
    """CPU milliseconds each process spent per call carried end to end."""
    if calls_per_s <= 0:
        return {}
    rate = calls_per_s
    return {
        name: round(share / rate * 1000, 2)
        for name, share in cores.items()
        if name not in ("machine", "others")
    }

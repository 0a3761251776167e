"""Liveness and readiness: what `/healthz` and `/readyz` report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Probe = Callable[[], Awaitable[bool]]
Info = Callable[[], dict[str, Any]]


@dataclass
class Health:
    """Readiness probes plus the named components that currently cannot make progress."""

    probes: dict[str, Probe] = field(default_factory=dict)
    stalled: dict[str, str] = field(default_factory=dict)
    serving: set[str] = field(default_factory=set)
    infos: dict[str, Info] = field(default_factory=dict)

    def add_probe(self, name: str, probe: Probe, *, needed_to_serve_http: bool = False) -> None:
        """Register a check that must pass for the service to be ready.

        `needed_to_serve_http` marks the checks the HTTP API cannot answer without (the
        database); the others (Kafka, consumers) may fail while the API still serves, as
        intake does during a broker outage thanks to the outbox.
        """
        self.probes[name] = probe
        if needed_to_serve_http:
            self.serving.add(name)

    def add_info(self, name: str, info: Info) -> None:
        """Show what `info()` returns under `name` in `/readyz` (facts, not a pass/fail check)."""
        self.infos[name] = info

    def details(self) -> dict[str, Any]:
        """The facts of every info provider."""
        return {name: info() for name, info in self.infos.items()}

    def stall(self, component: str, reason: str) -> None:
        """Mark a component as unable to progress (e.g. a consumer retrying a lost database)."""
        self.stalled[component] = reason

    def recover(self, component: str) -> None:
        """Mark a component as progressing again."""
        self.stalled.pop(component, None)

    async def readiness(self, timeout_s: float = 2.0, *, http_only: bool = False) -> dict[str, str]:
        """Run the probes (all, or those the HTTP API needs); map each to "ok" or why not."""

        async def run(name: str, probe: Probe) -> tuple[str, str]:
            try:
                ok = await asyncio.wait_for(probe(), timeout_s)
            except Exception as exc:  # a failing probe is an answer, not an error
                return name, f"failed: {type(exc).__name__}"
            return name, "ok" if ok else "failed"

        probes = {n: p for n, p in self.probes.items() if not http_only or n in self.serving}
        results = dict(await asyncio.gather(*(run(n, p) for n, p in probes.items())))
        if http_only:
            return results
        for component, reason in self.stalled.items():
            results[component] = f"stalled: {reason}"
        return results

"""One benchmark run: baseline, then the suite at rising rates and flat out, then a profile."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from switchboard_platform.testing.processes import ServiceProcess

from . import profile
from .baseline import BaselineSpec, baseline_process
from .load import LoadResult, LoadSpec, load_process
from .observer import ApiSampler, TopicWatcher
from .procs import CpuMeter, peak_rss_mib, rss_mib
from .stats import percentiles_ms, summarize_step
from .suite import Servers, create_tenant, running_services, tenant_numbers

_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Plan:
    """What to run and for how long."""

    rates: list[float]
    step_s: float
    concurrency: int
    max_s: float
    tenants: int
    api_samples_per_s: float
    baseline: bool
    profile: bool
    http_max: bool = False
    env: dict[str, str] = field(default_factory=dict)
    patches: str = ""


def _in_process(target: Any, spec: Any) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    parent, child = _SPAWN.Pipe()
    process = _SPAWN.Process(target=target, args=(spec, child), daemon=True)
    process.start()
    child.close()
    return process, parent


def run_baseline(plan: Plan, servers: Servers, fetch_max_wait_ms: int) -> dict[str, Any]:
    """The bare-I/O baseline in its own process, before the services start."""
    spec = BaselineSpec(
        bootstrap_servers=servers.kafka.bootstrap_servers,
        mongodb_url=servers.mongo.url,
        tenants=[f"baseline-tenant-{i}" for i in range(plan.tenants)],
        rate_per_s=100.0,
        rate_duration_s=min(plan.step_s, 6.0),
        concurrency=plan.concurrency,
        max_duration_s=plan.max_s,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    process, conn = _in_process(baseline_process, spec)
    result: dict[str, Any] = conn.recv()
    process.join(10)
    return result


class SuiteDriver:
    """Drives the running suite step by step and collects each step's figures."""

    def __init__(self, plan: Plan, servers: Servers, services: dict[str, ServiceProcess]) -> None:
        self.plan = plan
        self.servers = servers
        self.services = services
        self.numbers = tenant_numbers(plan.tenants)
        self.watcher = TopicWatcher(servers.kafka.bootstrap_servers)
        self.sampler = ApiSampler(services["notes"].url)
        self.sampler_port = 0
        self.pids = {name: s.pid for name, s in services.items() if s.pid is not None}
        for name, server in (("tansu", servers.kafka), ("nx-27017", servers.mongo)):
            if server.pid is not None:
                self.pids[name] = server.pid
        self.pids["bench-observer"] = os.getpid()

    async def start(self) -> None:
        """Onboard the tenants, start watching the topic and listening for samples."""
        for number in self.numbers:
            await asyncio.to_thread(create_tenant, self.services["intake"].url, number)
        await self.watcher.start()
        self.sampler_port = await self.sampler.start()

    async def stop(self) -> None:
        """Stop the observers."""
        await self.sampler.stop()
        await self.watcher.stop()

    async def step(
        self,
        label: str,
        *,
        rate: float | None = None,
        concurrency: int | None = None,
        end_to_end: bool = False,
        duration_s: float,
        profile_dir: Path | None = None,
    ) -> dict[str, Any]:
        """One load step from a fresh load process; waits for its notes before returning."""
        expected_rate = rate or 400.0
        sample_every = 0
        if self.plan.api_samples_per_s > 0:
            sample_every = max(1, round(expected_rate / self.plan.api_samples_per_s))
        spec = LoadSpec(
            intake_url=self.services["intake"].url,
            numbers=self.numbers,
            duration_s=duration_s,
            rate_per_s=rate,
            concurrency=concurrency,
            end_to_end=end_to_end,
            bootstrap_servers=self.servers.kafka.bootstrap_servers,
            sample_every=sample_every,
            observer_port=self.sampler_port,
        )
        process, conn = _in_process(load_process, spec)
        await asyncio.to_thread(conn.poll, 60)
        assert conn.recv() == "ready"
        meter = CpuMeter({**self.pids, "bench-load": process.pid or 0})
        meter.start(time.monotonic())
        recorders = self._start_profiles(profile_dir, duration_s) if profile_dir else {}
        result: LoadResult = await asyncio.to_thread(conn.recv)
        cpu = meter.shares(time.monotonic())
        process.join(10)
        window_end = result.started + duration_s
        await self._wait_for_notes(result)
        await self.sampler.drain()
        summary = summarize_step(
            result.calls, result.started, window_end, self.watcher.arrivals, rate
        )
        samples = [s for s in self.sampler.samples if result.started <= s.accepted_at]
        self.sampler.samples = [s for s in self.sampler.samples if s not in samples]
        summary["api_ms"] = percentiles_ms(
            s.readable_at - s.accepted_at for s in samples if s.readable_at is not None
        )
        summary["api_polls_per_sample"] = round(
            sum(s.polls for s in samples) / max(len(samples), 1), 1
        )
        summary |= {"label": label, "concurrency": concurrency, "duration_s": duration_s}
        summary["cpu_cores"] = cpu
        rate_done = max(summary["notes_per_s"], 1e-9)
        summary["cpu_ms_per_call"] = {
            name: round(cores / rate_done * 1000, 2)
            for name, cores in cpu.items()
            if name not in ("machine", "others")
        }
        summary["rss_mib"] = {name: rss_mib(pid) for name, pid in self.pids.items()}
        if recorders:
            summary["profile"] = self._finish_profiles(recorders, duration_s)
        return summary

    async def _wait_for_notes(self, result: LoadResult, timeout_s: float = 30.0) -> None:
        accepted = [c[0] for c in result.calls if c[4] == 201]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(call_id in self.watcher.arrivals for call_id in accepted):
                return
            await asyncio.sleep(0.05)

    def _start_profiles(self, out_dir: Path, duration_s: float) -> dict[str, tuple[Any, Path]]:
        binary = profile.py_spy()
        if binary is None:
            print("py-spy not found: install it or set PY_SPY; no profile taken", flush=True)
            return {}
        out_dir.mkdir(parents=True, exist_ok=True)
        recorders = {}
        for name in ("intake", "notes"):
            out = out_dir / f"{name}.collapsed.txt"
            pid = self.pids[name]
            recorders[name] = (profile.start_recording(binary, pid, duration_s - 1, out), out)
        return recorders

    def _finish_profiles(
        self, recorders: dict[str, tuple[Any, Path]], duration_s: float
    ) -> dict[str, Any]:
        summaries = {}
        for name, (process, out) in recorders.items():
            process.wait(30)
            if out.exists():
                summaries[name] = profile.summarize(out, duration_s - 1)
        return summaries

    def peak_rss(self) -> dict[str, float | None]:
        """Peak resident memory (VmHWM) of every process so far."""
        return {name: peak_rss_mib(pid) for name, pid in self.pids.items()}


async def drive_suite(
    plan: Plan, servers: Servers, services: dict[str, ServiceProcess], out_dir: Path
) -> dict[str, Any]:
    """Warm up, then every steady rate, then the closed-loop maximum (and its profile)."""
    driver = SuiteDriver(plan, servers, services)
    await driver.start()
    try:
        await driver.step("warm-up", rate=50, duration_s=2)
        steps = []
        for rate in plan.rates:
            steps.append(await driver.step(f"{rate:g}/s", rate=rate, duration_s=plan.step_s))
            print(_line(steps[-1]), flush=True)
        result: dict[str, Any] = {"steps": steps}
        if plan.http_max:
            http_max = await driver.step(
                f"intake max c={plan.concurrency}",
                concurrency=plan.concurrency,
                duration_s=plan.max_s,
            )
            print(_line(http_max), flush=True)
            result["intake_max"] = http_max
        label = f"max e2e c={plan.concurrency}"
        flat_out = await driver.step(
            label, concurrency=plan.concurrency, end_to_end=True, duration_s=plan.max_s
        )
        print(_line(flat_out), flush=True)
        result["max"] = flat_out
        if plan.profile:
            profiled = await driver.step(
                f"{label} (py-spy)",
                concurrency=plan.concurrency,
                end_to_end=True,
                duration_s=plan.max_s,
                profile_dir=out_dir / "profile",
            )
            print(_line(profiled), flush=True)
            result["profiled_max"] = profiled
        result["peak_rss_mib"] = driver.peak_rss()
        result["duplicate_note_events"] = driver.watcher.duplicates
        return result
    finally:
        await driver.stop()


def _line(step: dict[str, Any]) -> str:
    topic, api = step["topic_ms"], step["api_ms"]
    return (
        f"{step['label']:>24}: accepted {step['accepted_per_s']:7.1f}/s, "
        f"notes {step['notes_per_s']:7.1f}/s, backlog {step['backlog_growth_per_s']:+6.1f}/s, "
        f"topic p50/p99 {topic['p50']}/{topic['p99']} ms, api p50/p99 {api['p50']}/{api['p99']} ms"
    )


def run_suite(plan: Plan, servers: Servers, out_dir: Path) -> dict[str, Any]:
    """Start the services (from this, the main, thread) and drive them."""
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**plan.env, "BENCH_TIMINGS_DIR": str(out_dir)}
    with running_services(servers, log_dir, env, plan.patches) as services:
        result = asyncio.run(drive_suite(plan, servers, services, out_dir))
    timings = {
        p.name.split(".")[0]: json.loads(p.read_text()) for p in out_dir.glob("*.timings.json")
    }
    if timings:
        result["timings_ms"] = timings
    return result

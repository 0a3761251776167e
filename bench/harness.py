"""One benchmark run: the baseline, then the suite flat out (and profiled), then by rate."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from switchboard_dev.suite import Servers, create_tenant, running_services, tenant_numbers
from switchboard_platform.testing.processes import ServiceProcess

from . import episodes, profile
from .baseline import DATABASE, BaselineSpec, baseline_process
from .load import LoadResult, LoadSpec, load_process
from .observer import ApiSampler, TopicWatcher
from .procs import CpuMeter, peak_rss_mib, rss_mib
from .stats import commands_per_call, cpu_ms_per_call, summarize_step

_SPAWN = multiprocessing.get_context("spawn")
FETCH_MAX_WAIT_MS = 20  # what ServiceProcess gives the services; the baseline waits as long


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
    client: str = "raw"
    retries: int = 1
    max_foreign_cores: float = 0.3
    env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=lambda: {"intake": 1, "notes": 1})
    episodes: bool = True


def _in_process(target: Any, spec: Any) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    parent, child = _SPAWN.Pipe()
    process = _SPAWN.Process(target=target, args=(spec, child), daemon=True)
    process.start()
    child.close()
    return process, parent


def run_baseline(plan: Plan, servers: Servers, *, rate_step: bool = True) -> dict[str, Any]:
    """The bare-I/O baseline in its own process: its 100/s step (unless not `rate_step`),
    then its closed-loop maximum."""
    spec = BaselineSpec(
        bootstrap_servers=servers.kafka.bootstrap_servers,
        mongodb_url=servers.mongo.url,
        tenants=[f"baseline-tenant-{i}" for i in range(plan.tenants)],
        rate_per_s=100.0,
        rate_duration_s=min(plan.step_s, 6.0) if rate_step else 0.0,
        concurrency=plan.concurrency,
        max_duration_s=plan.max_s,
        fetch_max_wait_ms=int(plan.env.get("KAFKA_FETCH_MAX_WAIT_MS", FETCH_MAX_WAIT_MS)),
        server_pids={
            name: pid
            for name, pid in (("tansu", servers.kafka.pid), ("nx-27017", servers.mongo.pid))
            if pid is not None
        },
        database=f"{servers.database_prefix}{DATABASE}",
    )
    process, conn = _in_process(baseline_process, spec)
    result: dict[str, Any] = conn.recv()
    process.join(10)
    return result


class SuiteDriver:
    """Drives the running suite step by step and collects each step's figures."""

    def __init__(
        self, plan: Plan, servers: Servers, groups: dict[str, list[ServiceProcess]]
    ) -> None:
        self.plan = plan
        self.servers = servers
        self.groups = groups
        self.services = {name: replicas[0] for name, replicas in groups.items()}
        self.numbers = tenant_numbers(plan.tenants)
        self.watcher = TopicWatcher(servers.kafka.bootstrap_servers)
        self.sampler = ApiSampler(self.services["notes"].url)
        self.sampler_port = 0
        self.pids = {_pid_name(p): p.pid for g in groups.values() for p in g if p.pid is not None}
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
            intake_urls=[p.url for p in self.groups["intake"]],
            numbers=self.numbers,
            duration_s=duration_s,
            rate_per_s=rate,
            concurrency=concurrency,
            end_to_end=end_to_end,
            bootstrap_servers=self.servers.kafka.bootstrap_servers,
            sample_every=sample_every,
            observer_port=self.sampler_port,
            client=self.plan.client,
        )
        process, conn = _in_process(load_process, spec)
        if not await asyncio.to_thread(conn.poll, 60) or conn.recv() != "ready":
            raise RuntimeError("the load process did not start")
        counting = self.plan.env.get("MONGODB_COMMAND_METRICS") == "true"
        commands_before = await self.db_commands() if counting else {}
        meter = CpuMeter({**self.pids, "bench-load": process.pid or 0})
        meter.start(time.monotonic())
        recording = profile.Recording.start(self.pids, profile_dir, duration_s - 1)
        result: LoadResult = await asyncio.to_thread(conn.recv)
        cpu = _per_service(meter.shares(time.monotonic()))
        commands_after = await self.db_commands() if counting else {}
        process.join(10)
        window_end = result.started + duration_s
        await self._wait_for_notes(result)
        await self.sampler.drain()
        summary = summarize_step(
            result.calls, result.started, window_end, self.watcher.arrivals, rate
        )
        summary |= self.sampler.report(since=result.started, arrivals=self.watcher.arrivals)
        summary |= {"label": label, "concurrency": concurrency, "duration_s": duration_s}
        summary["cpu_cores"] = cpu
        summary["cpu_ms_per_call"] = cpu_ms_per_call(cpu, summary["notes_per_s"])
        # from just before the load to its end, against the notes of the step's window
        summary["db_commands_per_call"] = commands_per_call(
            _difference(commands_after, commands_before), summary["notes_per_s"] * duration_s
        )
        summary["rss_mib"] = {name: rss_mib(pid) for name, pid in self.pids.items()}
        self.refresh_pids()
        if recording is not None:
            summary["profile"] = recording.finish()
        return summary

    async def db_commands(self) -> dict[str, dict[str, float]]:
        """Each service's database commands so far (`switchboard_db_commands_total`, summed
        over its replicas), by "command collection"; a replica that does not answer counts
        nothing (the restart episode)."""
        counts: dict[str, dict[str, float]] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            for name, replicas in self.groups.items():
                own = counts.setdefault(name, {})
                for replica in replicas:
                    try:
                        text = (await client.get(f"{replica.url}/metrics")).text
                    except httpx.HTTPError:
                        continue
                    for key, value in _db_command_samples(text).items():
                        own[key] = own.get(key, 0.0) + value
        return counts

    async def clean_step(self, label: str, **kwargs: Any) -> dict[str, Any]:
        """A step, run again (up to `plan.retries` times) while other work took the CPU."""
        attempts = []
        for _ in range(self.plan.retries + 1):
            summary = await self.step(label, **kwargs)
            attempts.append(summary["cpu_cores"]["others"])
            if summary["cpu_cores"]["others"] <= self.plan.max_foreign_cores:
                break
            print(f"{label}: others used {attempts[-1]} cores; running it again", flush=True)
        summary["foreign_cores_per_attempt"] = attempts
        return summary

    async def baseline_again(self) -> dict[str, Any]:
        """The baseline's maximum once more, right after the suite's, as it ran before:
        with every service process frozen (SIGSTOP) and the topic watcher paused. Then
        the services thaw and a warm-up step waits until they carry calls again (a frozen
        consumer misses its heartbeats and joins its group anew)."""
        processes = [p for group in self.groups.values() for p in group]
        pids = [p.pid for p in processes if p.pid is not None]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.watcher.pause()
        try:
            result = await asyncio.to_thread(run_baseline, self.plan, self.servers, rate_step=False)
        finally:
            self.watcher.resume()
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        for process in processes:
            await asyncio.to_thread(process.wait_ready)
        await self.step("warm-up again", rate=50, duration_s=2)
        await self.settle()
        return result

    async def settle(self, timeout_s: float = 90.0) -> bool:
        """Wait until notes caught up with everything intake accepted: notes' lag on the
        topic and intake's own unpublished calls, the two gauges its push-back adds up;
        False if they did not reach zero in time."""
        url = f"{self.services['intake'].url}/metrics"
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                text = (await client.get(url)).text
                lags = _gauge(text, "switchboard_intake_downstream_lag_messages{")
                unpublished = _gauge(text, "switchboard_intake_unpublished_calls ")
                if lags and max(lags) == 0 and not any(unpublished):
                    return True
                await asyncio.sleep(0.5)
        return False

    async def _wait_for_notes(self, result: LoadResult, timeout_s: float = 30.0) -> None:
        accepted = [c[0] for c in result.calls if c[4] == 201]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(call_id in self.watcher.arrivals for call_id in accepted):
                return
            await asyncio.sleep(0.05)

    def refresh_pids(self) -> None:
        """Follow restarted processes (the restart episode replaces them)."""
        for group in self.groups.values():
            for process in group:
                if process.pid is not None:
                    self.pids[_pid_name(process)] = process.pid

    def peak_rss(self) -> dict[str, float | None]:
        """Peak resident memory (VmHWM) of every process so far."""
        return {name: peak_rss_mib(pid) for name, pid in self.pids.items()}


def _pid_name(process: ServiceProcess) -> str:
    """`intake` for a single replica, `intake-1` for the second of several."""
    return process.service if process.name.endswith("-0") else process.name


_REPLICA = re.compile(r"^(intake|notes|notify|retention|crm-sync)-[0-9]+$")


def _per_service(shares: dict[str, float]) -> dict[str, float]:
    """CPU shares with every replica of a service added up under the service's name."""
    merged: dict[str, float] = {}
    for name, value in shares.items():
        replica = _REPLICA.match(name)
        service = replica.group(1) if replica else name
        merged[service] = round(merged.get(service, 0.0) + value, 3)
    return merged


async def drive_suite(
    plan: Plan, servers: Servers, groups: dict[str, list[ServiceProcess]], out_dir: Path
) -> dict[str, Any]:
    """Warm up, the closed-loop maximum, the baseline's maximum again (with a baseline), the
    profile, then every steady rate.

    The maximum comes first: the embedded broker gets slower per message as it fills (its
    memory storage), and the baseline before it ran on an emptier one. The baseline's second
    maximum, on a fuller broker and minutes later, brackets the suite's: the ratio is taken
    against the mean of the two, which damps the machine's drift within the run.
    """
    driver = SuiteDriver(plan, servers, groups)
    await driver.start()
    try:
        await driver.step("warm-up", rate=50, duration_s=2)
        label = f"max e2e c={plan.concurrency}"
        result: dict[str, Any] = {}
        result["max"] = await driver.clean_step(
            label, concurrency=plan.concurrency, end_to_end=True, duration_s=plan.max_s
        )
        print(_line(result["max"]), flush=True)
        if plan.baseline:
            result["baseline_after"] = await driver.baseline_again()
            print(f"baseline after: {json.dumps(result['baseline_after']['max'])}", flush=True)
        if plan.profile:
            result["profiled_max"] = await driver.step(
                f"{label} (py-spy)",
                concurrency=plan.concurrency,
                end_to_end=True,
                duration_s=plan.max_s,
                profile_dir=out_dir / "profile",
            )
            print(_line(result["profiled_max"]), flush=True)
        steps = []
        for rate in plan.rates:
            steps.append(await driver.clean_step(f"{rate:g}/s", rate=rate, duration_s=plan.step_s))
            print(_line(steps[-1]), flush=True)
        result["steps"] = steps
        if plan.http_max:  # last: it leaves a backlog behind
            result["intake_max"] = await driver.clean_step(
                f"intake max c={plan.concurrency}",
                concurrency=plan.concurrency,
                duration_s=plan.max_s,
            )
            print(_line(result["intake_max"]), flush=True)
        result["peak_rss_mib"] = driver.peak_rss()
        if plan.episodes:
            intake, notes = driver.services["intake"], driver.services["notes"]
            number = driver.numbers[0]
            # from an empty backlog: the overloaded step before may have left one
            result["settled_before_backpressure"] = await driver.settle()
            result["backpressure"] = await episodes.backpressure(intake.url, notes, number)
            print(f"backpressure: {result['backpressure']}", flush=True)
            result["settled_before_restart"] = await driver.settle()
            result["restart"] = await episodes.restart(intake, notes, number, driver.watcher)
            print(f"restart: {result['restart']}", flush=True)
        result["duplicate_note_events"] = driver.watcher.duplicates
        result["api_samples_skipped"] = driver.sampler.skipped
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
    env = {
        "INTAKE_MAX_DOWNSTREAM_LAG": str(episodes.BACKPRESSURE_LIMIT),
        **plan.env,
        "BENCH_TIMINGS_DIR": str(out_dir),
    }
    with running_services(servers, log_dir, plan.replicas, env=env) as groups:
        result = asyncio.run(drive_suite(plan, servers, groups, out_dir))
    timings = {
        p.name.split(".")[0]: json.loads(p.read_text()) for p in out_dir.glob("*.timings.json")
    }
    if timings:
        result["timings_ms"] = timings
    return result


def _db_command_samples(metrics: str) -> dict[str, float]:
    """`switchboard_db_commands_total` of one scrape, by "command collection"."""
    return {
        f"{sample.labels['command']} {sample.labels['collection']}".strip(): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "switchboard_db_commands"
        for sample in family.samples
        if sample.name == "switchboard_db_commands_total"
    }


def _difference(
    after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    return {
        name: {k: v - before.get(name, {}).get(k, 0.0) for k, v in counts.items()}
        for name, counts in after.items()
    }


def _gauge(metrics: str, prefix: str) -> list[float]:
    """The values of the Prometheus samples whose line starts with `prefix`."""
    return [
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    ]

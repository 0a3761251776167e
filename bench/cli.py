"""Command line of the benchmark: options, the run, results JSON and Markdown."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switchboard_dev.infra import EMBEDDED_KAFKA_ENV
from switchboard_dev.suite import external_servers, running_servers
from switchboard_platform.settings import ServiceSettings

from .harness import Plan, run_baseline, run_suite
from .procs import import_times, machine
from .report import markdown, median_summary, verdict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench", description="Benchmark the Switchboard suite (see bench/README.md)."
    )
    parser.add_argument("--rates", default="50,100,200,400", help="steady rates, calls/s")
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds per steady step")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="calls in flight end to end in the max step"
    )
    parser.add_argument("--max-s", type=float, default=10.0, help="seconds of the max step")
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--api-samples-per-s", type=float, default=10.0)
    parser.add_argument("--no-baseline", action="store_true", help="suite only")
    parser.add_argument("--baseline-only", action="store_true", help="baseline only")
    parser.add_argument("--profile", action="store_true", help="repeat max step under py-spy")
    parser.add_argument(
        "--http-max", action="store_true", help="also a closed loop on intake alone (backlog!)"
    )
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="load generator's HTTP client"
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="reruns of a step while others use the CPU"
    )
    parser.add_argument("--quick", action="store_true", help="short steps: a smoke test")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="service environment"
    )
    parser.add_argument(
        "--count-db-commands",
        action="store_true",
        help="count the services' database commands per call (MONGODB_COMMAND_METRICS; "
        "about 0.07 ms of CPU per command, so off for the figures)",
    )
    parser.add_argument(
        "--replicas",
        default="intake=1,notes=1",
        help="processes per service, e.g. intake=3,notes=2 (load is spread over intake's)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="whole runs on fresh servers; figures as medians"
    )
    parser.add_argument(
        "--no-episodes", action="store_true", help="skip the backpressure and restart episodes"
    )
    parser.add_argument(
        "--kafka-bootstrap-servers",
        default="",
        help="run on this Kafka instead of a fresh embedded broker (with --mongodb-url)",
    )
    parser.add_argument(
        "--mongodb-url",
        default="",
        help="run on this MongoDB instead of a fresh embedded server (with the broker's)",
    )
    parser.add_argument("--name", default="", help="label of this run in the results file name")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if bool(args.kafka_bootstrap_servers) != bool(args.mongodb_url):
        parser.error("--kafka-bootstrap-servers and --mongodb-url go together")
    return args


def _service_defaults() -> dict[str, str]:
    """The services' own defaults (what `make dev` runs) for what the tests set shorter
    (`ServiceProcess`: relay polls every 50 ms, idle topics fetched every 200 ms, a 3 s
    lease), so the bench measures the suite as it ships, not as the tests speed it up."""
    fields = ServiceSettings.model_fields
    return {
        "OUTBOX_POLL_INTERVAL_S": str(fields["outbox_poll_interval_s"].default),
        "KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS": str(
            fields["kafka_background_fetch_max_wait_ms"].default
        ),
        "OUTBOX_LEASE_S": str(fields["outbox_lease_s"].default),
    }


def _plan(args: argparse.Namespace) -> Plan:
    # what the dev runner sets on the embedded broker (a 2 s session), unlike the tests
    env = (
        dict(EMBEDDED_KAFKA_ENV)
        | _service_defaults()
        | {"MONGODB_COMMAND_METRICS": "true" if args.count_db_commands else "false"}
        | dict(item.split("=", 1) for item in args.env)
    )
    step_s, max_s = (3.0, 4.0) if args.quick else (args.step_s, args.max_s)
    return Plan(
        rates=[float(r) for r in args.rates.split(",") if r],
        step_s=step_s,
        concurrency=args.concurrency,
        max_s=max_s,
        tenants=args.tenants,
        api_samples_per_s=args.api_samples_per_s,
        baseline=not args.no_baseline,
        profile=args.profile,
        http_max=args.http_max,
        client=args.client,
        retries=args.retries,
        env=env,
        replicas={k: int(v) for k, v in (item.split("=") for item in args.replicas.split(","))},
        episodes=not args.no_episodes,
    )


def _one_run(args: argparse.Namespace, plan: Plan, run_name: str) -> dict[str, Any]:
    """One whole run on fresh embedded servers (or the external ones, in databases of the
    run's own): baseline, then the suite; written to `<out>/`."""
    out_dir = args.out / run_name
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "run": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv[1:],
            "machine": machine(),
            "plan": plan.__dict__,
            "import_s": import_times(),
        }
    }
    began = time.monotonic()
    servers_used = (
        external_servers(args.kafka_bootstrap_servers, args.mongodb_url)
        if args.kafka_bootstrap_servers
        else running_servers()
    )
    result["run"]["servers"] = "external" if args.kafka_bootstrap_servers else "embedded"
    with servers_used as servers:
        if plan.baseline:
            result["baseline"] = run_baseline(plan, servers)
            print(f"baseline: {json.dumps(result['baseline']['max'])}", flush=True)
        if not args.baseline_only:
            result["suite"] = run_suite(plan, servers, out_dir)
    result["verdict"] = verdict(result)
    result["run"]["wall_s"] = round(time.monotonic() - began, 1)
    (args.out / f"{run_name}.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    (args.out / f"{run_name}.md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {args.out / run_name}.json", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark `--repeat` times; write each run, and with several the medians."""
    args = _parse(argv)
    plan = _plan(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{args.name}" if args.name else stamp
    runs = []
    for i in range(args.repeat):
        name = base if args.repeat == 1 else f"{base}-run{i + 1}"
        runs.append(_one_run(args, plan, name))
    if args.repeat > 1:
        summary = median_summary(runs)
        (args.out / f"{base}-median.md").write_text(summary + "\n")
        print(summary)
        print(f"\nmedians: {args.out / base}-median.md", flush=True)

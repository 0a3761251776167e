"""`switchboard dev`: the whole suite on one machine, on embedded servers unless told otherwise."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_dev.command import SubParsers
from switchboard_dev.config import DevSettings, workspace_root
from switchboard_dev.crm_keys import dev_credentials_key
from switchboard_dev.infra import Endpoints, dev_servers
from switchboard_dev.services import SERVICES, Service, missing_reason
from switchboard_dev.supervisor import ChildSpec, Supervisor, stop_on_signals
from switchboard_platform.embedded import EmbeddedServerError
from switchboard_platform.kafka_admin import ensure_topics
from switchboard_platform.settings import DEV_JWT_SECRET

HOST = "127.0.0.1"
FETCH_MAX_WAIT_MS = "20"  # Tansu answers a fetch only after its full wait (INFRA.md)
_PORT_HINT = (
    "Is another `switchboard dev` running? Set KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL to use "
    "running servers, or SWITCHBOARD_DEV_KAFKA_PORT / SWITCHBOARD_DEV_MONGO_PORT for other ports."
)


def add_parser(subparsers: SubParsers, name: str) -> argparse.ArgumentParser:
    """Add `dev` and its options."""
    parser = subparsers.add_parser(
        name,
        help="run every service locally, with embedded Kafka and MongoDB by default",
        description=(
            "Start Kafka and MongoDB (embedded unless KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL "
            "are set), create the topics, then run and supervise every service."
        ),
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds a service gets to stop after SIGTERM"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM; then stop the services and the embedded servers."""
    try:
        settings = DevSettings()
    except ValidationError as exc:
        _say(f"bad settings: {exc}")
        return 2
    data_dir = settings.data_dir or workspace_root(Path.cwd()) / ".data"
    previous = signal.signal(signal.SIGTERM, _interrupt)  # clean up even during start-up
    try:
        with dev_servers(settings, data_dir, _say) as endpoints:
            return asyncio.run(_supervise(endpoints, args.grace, data_dir))
    except EmbeddedServerError as exc:
        _say(f"{exc}\n{_PORT_HINT if 'in use' in str(exc) else ''}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        _say("stopped")


def service_child(service: Service, endpoints: Endpoints, env: Mapping[str, str]) -> ChildSpec:
    """How to run `service`: `python -m <module>` with the suite's variables set."""
    prefix = service.env_prefix
    child_env = dict(env)
    child_env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
            "MONGODB_URL": endpoints.mongodb_url,
            f"{prefix}_PORT": str(service_port(service, env)),
            f"{prefix}_HOST": HOST,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, value in endpoints.telemetry_env.items():  # the runner's trace receiver
        child_env.setdefault(name, value)
    child_env.setdefault("SWITCHBOARD_ENV", "dev")  # services default to production (fail closed)
    child_env.setdefault("SWITCHBOARD_JWT_SECRET", DEV_JWT_SECRET)
    child_env.setdefault("KAFKA_FETCH_MAX_WAIT_MS", FETCH_MAX_WAIT_MS)
    for name, value in endpoints.kafka_env.items():  # the embedded broker's: a 2 s session
        child_env.setdefault(name, value)
    child_env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "6000")  # Apache Kafka's minimum
    child_env.setdefault("KAFKA_REBALANCE_TIMEOUT_MS", "10000")
    child_env.setdefault("MONGODB_COMMAND_METRICS", "true")  # the dashboards' Database row
    if state := child_env.get("SWITCHBOARD_STATE_DIR"):  # the services' base: one dir each
        child_env["SWITCHBOARD_STATE_DIR"] = str(Path(state) / service.name)
    if service.name == "notify":  # the local mail and SMS sinks, unless configured away
        for name, value in endpoints.notify_env.items():
            child_env.setdefault(name, value)
        notes = next((s for s in SERVICES if s.name == "notes"), None)
        if notes is not None:  # the links in its messages open the note on this machine
            link = f"http://{HOST}:{service_port(notes, env)}/v1/notes/{{note_id}}"
            child_env.setdefault("NOTIFY_NOTE_LINK_TEMPLATE", link)
    return ChildSpec(service.name, (sys.executable, "-m", service.module), child_env)


def service_port(service: Service, env: Mapping[str, str]) -> int:
    """The service's port: `<NAME>_PORT` from the environment, else the table's."""
    return int(env.get(f"{service.env_prefix}_PORT") or service.port)


async def _supervise(endpoints: Endpoints, grace: float, data_dir: Path) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        await ensure_topics(endpoints.kafka_bootstrap_servers, ALL_TOPICS)
    except KafkaError as exc:
        _say(f"could not create topics on {endpoints.kafka_bootstrap_servers}: {exc!r}")
        return 1
    children = []
    for service in SERVICES:
        reason = missing_reason(service)
        if reason is not None:
            _say(f"skipped  {service.name}: {reason}")
            continue
        children.append(service_child(service, endpoints, dev_env(data_dir)))
        _say(f"{service.name:<8} http://{HOST}:{service_port(service, os.environ)}/docs")
    _say("Ctrl-C stops everything")
    lost: list[str] = []
    watch = asyncio.create_task(_watch_embedded(endpoints, stop, lost))
    try:
        await Supervisor(children, grace=grace).run(stop)
    finally:
        watch.cancel()
    return 1 if lost else 0


WATCH_INTERVAL_S = 1.0


async def _watch_embedded(endpoints: Endpoints, stop: asyncio.Event, lost: list[str]) -> None:
    """Stop the suite, saying why, when an embedded server dies: the services would only
    wait for it, not ready, and Tansu keeps its topics in memory, so a broker started again
    would be an empty one that the services' read positions no longer match."""
    while not stop.is_set():
        for server in endpoints.embedded:
            if not server.running:
                lost.append(server.name)
                _say(
                    f"the embedded {server.name} exited (log {server.log_path}); stopping the "
                    "services: start `make dev` again"
                )
                stop.set()
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)


def dev_env(data_dir: Path) -> dict[str, str]:
    """The environment every service gets in dev, on top of the caller's."""
    env = dict(os.environ)
    # crm-sync seals CRM credentials with this key; it is kept in .data across runs
    env.setdefault("CRM_SYNC_CREDENTIALS_KEY", dev_credentials_key(data_dir))
    # webhook receivers on this machine (http://127.0.0.1:...) are fine in dev
    env.setdefault("CRM_SYNC_ALLOW_PRIVATE_URLS", "true")
    # one replica per service here, each with a folder of its own below this one: a
    # restarted service frees the place its crashed predecessor held in its groups and
    # takes its relay lease back (docs/decisions/0016)
    env.setdefault("SWITCHBOARD_STATE_DIR", str(data_dir / "state"))
    return env


def _say(message: str) -> None:
    print(f"switchboard: {message}", flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt

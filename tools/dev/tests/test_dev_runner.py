"""`switchboard dev` starts embedded servers and the services, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from switchboard_contracts.topics import ALL_TOPICS
from switchboard_dev.infra import EMBEDDED_KAFKA_ENV, Endpoints
from switchboard_dev.runner import dev_env, service_child
from switchboard_dev.services import SERVICES, Service, missing_reason
from switchboard_platform.embedded import free_port
from switchboard_platform.settings import DEV_JWT_SECRET

# A stand-in service: reports the variables it got, leaves a grandchild, waits to be stopped.
FAKE_SERVICE = """
import json, os, subprocess, sys, time
keys = ["FAKE_PORT", "FAKE_HOST", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL",
        "SWITCHBOARD_JWT_SECRET", "KAFKA_FETCH_MAX_WAIT_MS"]
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("ENV " + json.dumps({k: os.environ.get(k) for k in keys}), flush=True)
time.sleep(60)
"""

# Runs the real CLI with the service table swapped for the stand-in.
DRIVER = """
import sys
from switchboard_dev import cli, runner
from switchboard_dev.services import Service
runner.SERVICES = (Service("fake", "fake_service", int(sys.argv[1])),)
sys.exit(cli.main(["dev", "--grace", "2"]))
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30.0) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"runner ended early:\n{''.join(lines)}"
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout}s:\n{''.join(lines)}")


def test_service_table_names_intake_and_notes_on_their_ports() -> None:
    assert [(s.name, s.module, s.port) for s in SERVICES][:2] == [
        ("intake", "switchboard_intake", 8001),
        ("notes", "switchboard_notes", 8002),
    ]
    assert Service("crm-sync", "x", 8005).env_prefix == "CRM_SYNC"


def test_service_without_main_module_is_skipped() -> None:
    assert missing_reason(Service("ghost", "switchboard_no_such_service", 9999)) is not None
    assert missing_reason(Service("dev", "switchboard_dev", 9999)) is None


def test_service_child_gets_the_suite_variables() -> None:
    spec = service_child(
        Service("crm-sync", "switchboard_crm_sync", 8005),
        Endpoints("127.0.0.1:1", "mongodb://127.0.0.1:2"),
        {"PATH": "/bin"},
    )
    assert spec.argv == (sys.executable, "-m", "switchboard_crm_sync")
    assert spec.env is not None
    assert spec.env["CRM_SYNC_PORT"] == "8005"
    assert spec.env["CRM_SYNC_HOST"] == "127.0.0.1"
    assert spec.env["KAFKA_FETCH_MAX_WAIT_MS"] == "20"
    assert spec.env["SWITCHBOARD_JWT_SECRET"] == DEV_JWT_SECRET
    assert spec.env["PATH"] == "/bin"
    assert spec.env["KAFKA_SESSION_TIMEOUT_MS"] == "6000"  # a broker of one's own: Kafka's minimum


def test_on_the_embedded_broker_services_get_a_short_session_and_a_state_dir(
    tmp_path: Path,
) -> None:
    spec = service_child(
        Service("notes", "switchboard_notes", 8002),
        Endpoints("127.0.0.1:1", "mongodb://127.0.0.1:2", kafka_env=EMBEDDED_KAFKA_ENV),
        dev_env(tmp_path),
    )
    assert spec.env is not None
    assert spec.env["KAFKA_SESSION_TIMEOUT_MS"] == "2000"
    assert spec.env["SWITCHBOARD_STATE_DIR"] == str(tmp_path / "state" / "notes")
    other = service_child(
        Service("intake", "switchboard_intake", 8001),
        Endpoints("127.0.0.1:1", "mongodb://127.0.0.1:2", kafka_env=EMBEDDED_KAFKA_ENV),
        dev_env(tmp_path),
    )
    assert other.env is not None
    # each service its own: the relay lease owner id kept there is per replica
    assert other.env["SWITCHBOARD_STATE_DIR"] == str(tmp_path / "state" / "intake")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # exited meanwhile
        return b""


def _start_runner(tmp_path: Path) -> tuple[subprocess.Popen[str], int, int, int]:
    """The real CLI's `dev` with the stand-in service, on free ports; its ports."""
    package = tmp_path / "fake_service"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_SERVICE)
    (tmp_path / "driver.py").write_text(DRIVER)
    kafka_port, mongo_port, service_port = free_port(), free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL"}
    }
    env |= {
        "PYTHONPATH": str(tmp_path),
        "SWITCHBOARD_DEV_KAFKA_PORT": str(kafka_port),
        "SWITCHBOARD_DEV_MONGO_PORT": str(mongo_port),
        "SWITCHBOARD_DEV_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("SWITCHBOARD_JWT_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(service_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return proc, kafka_port, mongo_port, service_port


def test_dev_runs_embedded_servers_and_services_and_sigterm_leaves_no_orphans(
    tmp_path: Path,
) -> None:
    proc, kafka_port, mongo_port, service_port = _start_runner(tmp_path)
    try:
        lines = _read_until(proc, "fake | ENV ")
        got = json.loads(lines[-1].split("fake | ENV ", 1)[1])
        assert got == {
            "FAKE_PORT": str(service_port),
            "FAKE_HOST": "127.0.0.1",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
            "MONGODB_URL": f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
            "SWITCHBOARD_JWT_SECRET": DEV_JWT_SECRET,
            "KAFKA_FETCH_MAX_WAIT_MS": "20",
        }
        assert f"fake     http://127.0.0.1:{service_port}/docs" in "".join(lines)
        with ThreadPoolExecutor(1) as pool:  # a private loop, away from pytest-asyncio's
            topics = pool.submit(asyncio.run, _topics(f"127.0.0.1:{kafka_port}")).result()
        assert set(ALL_TOPICS) <= topics
        time.sleep(0.2)  # let the fake service start its grandchild
        family = _descendants(proc.pid)
        assert len(family) >= 4  # tansu, nx-27017, the service and its grandchild

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not [pid for pid in family if _alive(pid)]
    assert (tmp_path / "data" / "mongo").is_dir()


def test_dev_stops_the_suite_and_says_why_when_its_embedded_broker_dies(
    tmp_path: Path,
) -> None:
    """The services would wait for it, not ready; an empty broker started again would not
    match their read positions. The runner says which server died and stops, exit 1."""
    proc, *_ = _start_runner(tmp_path)
    try:
        _read_until(proc, "fake | ENV ")
        family = _descendants(proc.pid)
        tansu = [p for p in family if b"tansu" in _cmdline(p)]
        assert len(tansu) == 1
        os.kill(tansu[0], signal.SIGKILL)
        lines = _read_until(proc, "the embedded tansu exited")
        assert "start `make dev` again" in lines[-1]
        assert proc.wait(timeout=20) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not [pid for pid in family if _alive(pid)]

"""A service started with a setting it cannot use exits at once, naming the variable; one
that cannot start (its port taken) exits too.

Each service's real entry point (`python -m switchboard_<name>`, what the image runs) with
bad values: exit code 2 within seconds, and one JSON log line that names every variable at
fault and its rule, never the value. Before, a bad broker address or SASL without
credentials was retried for ever behind a 503 (the message appeared only at shutdown), and a
bad number printed a 17-line pydantic traceback outside the JSON log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

from switchboard_platform.embedded import free_port
from switchboard_platform.testing.polling import wait_until
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

SERVICES = {
    "intake": "INTAKE",
    "notes": "NOTES",
    "notify": "NOTIFY",
    "crm_sync": "CRM_SYNC",
    "retention": "RETENTION",
}


def _start(package: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The service's real entry point, as the image runs it, until it exits (60 s at most)."""
    return subprocess.run(
        [sys.executable, "-m", f"switchboard_{package}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_bad_settings_end_the_process_with_one_line_naming_each_variable(package: str) -> None:
    env = {
        **os.environ,
        "SWITCHBOARD_ENV": "dev",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:notaport",
        "KAFKA_SESSION_TIMEOUT_MS": "secret-looking-value",
        f"{SERVICES[package]}_PORT": "70000",
    }
    done = _start(package, env)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    [line] = lines
    record = json.loads(line)
    assert record["message"] == "configuration refused"
    named = {problem.split(":")[0] for problem in record["problems"]}
    assert named == {
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SESSION_TIMEOUT_MS",
        f"{SERVICES[package]}_PORT",
    }
    assert "secret-looking-value" not in line


def test_sasl_without_credentials_is_refused_before_anything_connects() -> None:
    env = {**os.environ, "SWITCHBOARD_ENV": "dev", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    env.pop("KAFKA_SASL_USERNAME", None)
    done = _start("notes", env)
    assert done.returncode == 2
    assert "KAFKA_SASL_USERNAME" in done.stdout + done.stderr


@pytest.mark.parametrize("package", ["retention", "crm_sync"])
def test_a_port_in_use_ends_the_process_even_while_the_database_is_away(package: str) -> None:
    """Their background loop swallowed the shutdown's cancellation (a MongoDB error raised
    in its place, caught by the loop's catch-all): the process hung, SIGTERM ignored."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **os.environ,
            "SWITCHBOARD_ENV": "dev",
            f"{SERVICES[package]}_PORT": str(taken.getsockname()[1]),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "MONGODB_URL": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500",
        }
        done = _start(package, env)
    assert done.returncode != 0
    assert "address already in use" in done.stdout + done.stderr


def test_a_service_stopped_by_sigterm_exits_with_status_0(servers: ServerEndpoints) -> None:
    """Kubernetes and the dev runner stop a service with SIGTERM: a stop asked for and done is
    a success (uvicorn raised the signal again after its graceful shutdown: status 143)."""
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_ENV": "dev",
        "NOTES_PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "MONGODB_URL": servers.mongodb_url,
        "NOTES_MONGODB_DATABASE": f"notes_sigterm_{uuid.uuid4().hex[:8]}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard_notes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{port}/readyz"), timeout_s=60, what="notes ready"
        )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, output[-2000:]
    assert "service stopped" in output


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False

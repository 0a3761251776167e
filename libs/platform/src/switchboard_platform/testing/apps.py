"""Run a service app in-process against the real servers, with its lifespan, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI


@asynccontextmanager
async def running_app(
    app: FastAPI,
    *,
    wait_ready: bool = True,
    timeout_s: float = 30.0,
    shutdown_timeout_s: float = 30.0,
) -> AsyncIterator[httpx.AsyncClient]:
    """Start `app` (broker, database, relay, consumers), yield an HTTP client bound to it.

    The app serves at once and connects in the background; by default this waits until its
    `/readyz` answers 200 (consumers joined, producer connected), as a load balancer would.
    A shutdown longer than `shutdown_timeout_s` fails with `TimeoutError`.
    """
    async with LifespanManager(
        app, startup_timeout=30, shutdown_timeout=shutdown_timeout_s
    ) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            if wait_ready:
                await _until_ready(client, timeout_s)
            yield client


async def _until_ready(client: httpx.AsyncClient, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        reply = await client.get("/readyz")
        if reply.status_code == 200:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"app not ready after {timeout_s}s: {reply.text}")
        await asyncio.sleep(0.05)

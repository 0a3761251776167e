"""Beyond its maximum of requests in progress a process answers 503 at once (fast, no server)."""

from __future__ import annotations

import asyncio
import json

import httpx
import uvicorn

from switchboard_platform.http import api_router
from switchboard_platform.metrics import HTTP_SHED
from switchboard_platform.runtime import ServiceRuntime
from switchboard_platform.serve import guarded_protocol
from switchboard_platform.settings import ServiceSettings


class Gate:
    """Holds the requests that reach the route until opened."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.inside = 0
        self._entered = asyncio.Event()

    async def wait(self) -> None:
        self.inside += 1
        self._entered.set()
        await self.opened.wait()

    async def holding(self, count: int) -> None:
        """Return once `count` requests wait at the gate."""
        async with asyncio.timeout(5):
            while self.inside < count:
                self._entered.clear()
                await self._entered.wait()


def _app(limit: int, gate: Gate) -> httpx.AsyncClient:
    router = api_router("/v1/slow", tags=["slow"])

    @router.post("")
    async def slow(body: dict[str, int]) -> dict[str, int]:
        await gate.wait()
        if body.get("fail"):
            raise RuntimeError("a request that fails still leaves its place")
        return body

    settings = ServiceSettings(environment="test", http_max_in_flight=limit)
    app = ServiceRuntime("shed-test", settings).create_app(title="t", routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_the_request_beyond_the_maximum_is_refused_unread_with_retry_after() -> None:
    gate = Gate()
    shed_before = HTTP_SHED.labels(service="shed-test")._value.get()
    async with _app(2, gate) as client:
        held = [asyncio.create_task(client.post("/v1/slow", json={"n": i})) for i in range(2)]
        await gate.holding(2)

        refused = await client.post("/v1/slow", json={"n": 3})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] in {"1", "2", "3"}
        assert refused.headers["cache-control"] == "no-store"
        assert refused.json() == {"detail": "too many requests in progress; retry shortly"}
        assert gate.inside == 2  # never reached the route
        assert (await client.get("/healthz")).status_code == 200  # probes are never shed

        gate.opened.set()
        assert [r.json() for r in await asyncio.gather(*held)] == [{"n": 0}, {"n": 1}]
        assert (await client.post("/v1/slow", json={"n": 4})).status_code == 200
    assert HTTP_SHED.labels(service="shed-test")._value.get() == shed_before + 1


async def test_the_requests_of_one_burst_are_told_different_waits() -> None:
    """Clients shed together and told the same second would come back together."""
    gate = Gate()
    async with _app(1, gate) as client:
        held = asyncio.create_task(client.post("/v1/slow", json={"n": 0}))
        await gate.holding(1)
        waits = [
            int((await client.post("/v1/slow", json={"n": i})).headers["retry-after"])
            for i in range(40)
        ]
        gate.opened.set()
        await held
    assert set(waits) <= {1, 2, 3}
    assert len(set(waits)) > 1  # all 40 alike: 3 * (1/3)**40, never


async def test_a_failed_or_refused_request_gives_its_place_back() -> None:
    gate = Gate()
    gate.opened.set()
    async with _app(1, gate) as client:
        for _ in range(3):
            assert (await client.post("/v1/slow", json={"fail": 1})).status_code == 500
            assert (
                await client.post(
                    "/v1/slow", content=b"{", headers={"content-type": "application/json"}
                )
            ).status_code == 422
            assert (
                await client.post("/v1/slow", content=b"x", headers={"content-type": "text/plain"})
            ).status_code == 415
        assert (await client.post("/v1/slow", json={"n": 1})).status_code == 200


async def test_no_maximum_when_set_to_zero() -> None:
    gate = Gate()
    async with _app(0, gate) as client:
        held = [asyncio.create_task(client.post("/v1/slow", json={"n": i})) for i in range(50)]
        await gate.holding(50)
        gate.opened.set()
        assert {r.status_code for r in await asyncio.gather(*held)} == {200}


async def test_a_shed_body_arriving_late_is_not_read_as_the_next_requests_headers() -> None:
    """Over a real uvicorn with the guarded protocol: a kept-alive connection's shed POST
    whose body (larger than the header limit) comes after its headers, then a request."""
    gate = Gate()
    settings = ServiceSettings(environment="test", http_max_in_flight=1)
    router = api_router("/v1/slow", tags=["slow"])

    @router.post("")
    async def slow(body: dict[str, str]) -> dict[str, str]:
        await gate.wait()
        return {"size": str(len(body.get("pad", "")))}

    app = ServiceRuntime("shed-real", settings).create_app(title="t", routers=[router])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        http=guarded_protocol(settings),
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            held = asyncio.create_task(client.post("/v1/slow", json={"pad": "x"}))
            await gate.holding(1)

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps({"pad": "y" * 20_000}).encode()  # over the 16 KiB header limit
            assert len(body) > settings.max_header_bytes
            writer.write(
                b"POST /v1/slow HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                + b"content-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.2)  # the body comes in a later read than the headers
            writer.write(body)
            await writer.drain()
            assert (await _response(reader))[0] == 503

            writer.write(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")  # the same connection
            await writer.drain()
            assert (await _response(reader))[0] == 200
            writer.close()

            gate.opened.set()
            assert (await held).status_code == 200
    finally:
        gate.opened.set()  # a failed assertion must not leave the held request hanging
        server.should_exit = True
        await serving


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a content-length: its status and body."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        return int(lines[0].split()[1]), await reader.readexactly(length)

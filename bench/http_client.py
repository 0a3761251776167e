"""Two interchangeable HTTP clients for the load generator: httpx, and a lean raw one.

On a 2-core machine the load generator competes with the services for CPU; the raw client
(HTTP/1.1 keep-alive over asyncio streams, nothing else) costs a fraction of httpx's CPU
per request, so more of the machine is left to the suite under test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx


class JsonPoster(Protocol):
    """POSTs a JSON body; returns the status and the decoded JSON answer (or None)."""

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST `payload` to `path`; raise ConnectionError when the request fails."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


class HttpxPoster:
    """httpx.AsyncClient with a large keep-alive pool."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=30.0
        )

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST with httpx."""
        try:
            response = await self._client.post(path, json=payload)
        except httpx.HTTPError as exc:
            raise ConnectionError(str(exc)) from exc
        return response.status_code, response.json() if response.content else None

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class RawPoster:
    """HTTP/1.1 keep-alive POSTs over asyncio streams; answers must carry Content-Length."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {self._host}:{self._port}\r\n{extra}Content-Type: application/json\r\n"
        self._idle: list[Connection] = []

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST over an idle connection, or a new one."""
        body = json.dumps(payload).encode()
        request = f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n"
        conn = self._idle.pop() if self._idle else await self._connect()
        reader, writer = conn
        try:
            writer.write(request.encode() + body)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, keep = 0, True
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            data = await reader.readexactly(length) if length else b""
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            writer.close()
            raise ConnectionError(str(exc)) from exc
        if keep:
            self._idle.append(conn)
        else:
            writer.close()
        return status, json.loads(data) if data else None

    async def _connect(self) -> Connection:
        return await asyncio.open_connection(self._host, self._port)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

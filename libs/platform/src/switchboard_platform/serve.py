"""Run one service process: JSON logs, then uvicorn until SIGTERM (what every image runs).

uvicorn's HTTP protocol is extended by two limits it lacks: request headers must arrive in
full within `SWITCHBOARD_REQUEST_READ_TIMEOUT_S` (a slow or half-sent request no longer
holds a connection open) and may not exceed `SWITCHBOARD_MAX_HEADER_BYTES` (answered 431
before they are buffered whole). What the protocol answers itself (431, and 400 for a
request that is not HTTP) has the shape and headers of every other answer: a JSON `detail`,
`Cache-Control: no-store`, `X-Content-Type-Options: nosniff`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import socket
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .domain_errors import validation_problems
from .logs import configure_logging
from .settings import ServiceSettings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)

GRACEFUL_SHUTDOWN_S = 20


class GuardedHttpProtocol(HttpToolsProtocol):
    """httptools protocol with a header deadline and a header size limit per request."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._reading_headers = True
        self._tail = b""

    def _arm(self) -> None:
        self._disarm()
        self._reading_headers = True
        self._header_bytes = 0
        self._tail = b""
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count header bytes before handing them to the parser."""
        if self._reading_headers:
            # count up to the blank line that ends the headers (it may straddle two reads)
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = seen[-3:]
            if self._header_bytes > self.max_header_bytes:
                self._refuse_headers()
                return
        super().data_received(data)

    def _refuse_headers(self) -> None:
        self._disarm()
        self._answer_and_close(431, "Request Header Fields Too Large", "request headers too large")

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read: 400 as JSON (uvicorn answers plain text)."""
        self._disarm()
        self._answer_and_close(400, "Bad Request", "the request is not valid HTTP/1.1")

    def _answer_and_close(self, status: int, reason: str, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        head = [
            f"HTTP/1.1 {status} {reason}".encode(),
            b"content-type: application/json",
            b"cache-control: no-store",  # as every answer (RequestGuard adds them in ASGI)
            b"x-content-type-options: nosniff",
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()

    def on_headers_complete(self) -> None:
        """The headers arrived in time: stop the clock (the body has its own, in ASGI)."""
        self._reading_headers = False
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """Keep-alive: the next request's headers get the same deadline."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()


def guarded_protocol(settings: ServiceSettings) -> type[GuardedHttpProtocol]:
    """The protocol class with this service's limits."""
    return type(
        "ServiceHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "header_timeout_s": settings.request_read_timeout_s,
            "max_header_bytes": settings.max_header_bytes,
        },
    )


def refused_settings(read_settings: Callable[[], Any], exc: ValidationError) -> list[str]:
    """Each error as `VARIABLE: rule` (the variable a field is read from, when known)."""
    names: dict[str, str] = {}
    if isinstance(read_settings, type) and issubclass(read_settings, BaseSettings):
        prefix = str(read_settings.model_config.get("env_prefix") or "")
        for name, info in read_settings.model_fields.items():
            alias = info.validation_alias
            choices = getattr(alias, "choices", None)
            names[name] = str(choices[0]) if choices else (prefix + name).upper()
    problems = []
    for problem in validation_problems(exc.errors(include_url=False, include_input=False)):
        variable = names.get(problem.field, problem.field.upper()) if problem.field else ""
        problems.append(f"{variable}: {problem.message}" if variable else problem.message)
    return problems


def serve(service: str, read_settings: Callable[[], S], create_app: Callable[[S], FastAPI]) -> None:
    """Read the settings, then serve `create_app(settings)` on the configured host and port;
    stop gracefully. Settings the environment gets wrong end the process at once (exit 2)
    with one JSON log line naming each variable and its rule, never its value."""
    configure_logging(service)
    try:
        settings = read_settings()
    except ValidationError as exc:
        log.error("configuration refused", extra={"problems": refused_settings(read_settings, exc)})
        raise SystemExit(2) from None
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        http=guarded_protocol(settings),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
    server = StoppedOnRequest(config, freeze_heap=settings.gc_freeze)
    server.run()
    if not server.started:  # e.g. the port is taken: as uvicorn.run ends then
        raise SystemExit(STARTUP_FAILURE)


STARTUP_FAILURE = 3
"""uvicorn's exit status for a server that never started."""


def freeze_startup_heap() -> int:
    """Move every object alive once the service started out of the garbage collector's
    view (`gc.freeze`), after collecting what start-up left behind; return how many.

    A full collection walks every tracked object: in intake and notes some 100,000 of them,
    most of them modules, classes and functions that live as long as the process. That took
    70-110 ms, two to four times in 40 s of load, and stopped everything in the process
    meanwhile (bench/README.md); after the freeze the same collections take 2-8 ms. What is
    frozen is never collected: start-up's objects, which the process keeps anyway, and those
    of background start-up work still running at that moment (a consumer joining its
    group), a small one-off amount should any of them become cyclic garbage later.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class StoppedOnRequest(uvicorn.Server):
    """uvicorn's server, except that a shutdown SIGTERM asked for and that completed ends
    the process with status 0, as Kubernetes and the dev runner ask a service to stop;
    uvicorn itself raises the signal again afterwards (status 143). Ctrl-C still does.
    Once started, it freezes the start-up heap (`SWITCHBOARD_GC_FREEZE`)."""

    def __init__(self, config: uvicorn.Config, *, freeze_heap: bool = False) -> None:
        super().__init__(config)
        self._freeze_heap = freeze_heap

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._freeze_heap and not self.should_exit:
            started = time.perf_counter()
            frozen = freeze_startup_heap()
            took_ms = round((time.perf_counter() - started) * 1000, 1)
            log.info("start-up heap frozen", extra={"frozen_objects": frozen, "took_ms": took_ms})

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]

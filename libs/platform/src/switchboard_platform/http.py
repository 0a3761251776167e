"""HTTP plumbing every service installs, as plain ASGI: request guard, metrics, ops routes.

`RequestGuard` is the outermost layer of every app. It refuses oversized headers (431) and
bodies (413, counted while they arrive, chunked or not), closes a request whose body stalls
(408), refuses a body declared as anything but JSON (415, every API takes JSON) and JSON
that is not JSON (NaN, Infinity, lone surrogates: 422), answers `HEAD` as `GET` without the
body (RFC 9110 §9.3.2), and marks every answer `Cache-Control: no-store` and
`X-Content-Type-Options: nosniff` (answers carry personal data). Beyond
`SWITCHBOARD_HTTP_MAX_IN_FLIGHT` requests at once in the process it answers 503 with
`Retry-After` (1 to 3 s, at random) without handing the request on (probes excepted): an
overloaded process sheds what it cannot serve instead of queueing it, its memory and its
CPU per request bounded. Slow or oversized request *headers* are cut off earlier, in the
server protocol (`serve.py`). Pure ASGI rather than `BaseHTTPMiddleware`, which runs the
rest of the app in a new task behind memory streams on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ERROR_RESPONSES
from .metrics import HTTP_DURATION, HTTP_REQUESTS, HTTP_SHED, READINESS

if TYPE_CHECKING:
    from .runtime import ServiceRuntime

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_SECURITY_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))


class _Refused(Exception):
    """The request is refused before the app sees (all of) it."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _refuse_constant(name: str) -> Any:
    raise _Refused(422, [{"loc": ["body"], "msg": f"{name} is not a JSON number", "type": "json"}])


def check_json(body: bytes) -> None:
    """Raise _Refused for JSON that Python would read but no other JSON parser does.

    NaN/Infinity are not JSON; a lone surrogate (`"\\ud800"`) is no character and cannot be
    stored. Bodies that are not JSON at all are left to FastAPI, which names the error.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(
            422, [{"loc": ["body"], "msg": "the body is not UTF-8 text", "type": "json"}]
        ) from None
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # not JSON: FastAPI names the error (422)
        return
    if "\\u" not in text:
        return  # UTF-8 text holds no surrogate: only a `\u` escape can make one
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        message = "a string holds an invalid character (a lone surrogate)"
        raise _Refused(422, [{"loc": ["body"], "msg": message, "type": "json"}]) from None


_NOT_JSON = {
    "loc": ["header", "content-type"],
    "msg": "the body must be JSON (application/json)",
    "type": "content_type",
}


SHED_RETRY_AFTER_S = (1, 3)
"""What a shed request is told to wait, in whole seconds, drawn at random from this range:
the requests ahead of it take milliseconds, and clients shed by one burst that all came
back after the same second would make the next burst."""


def _shed_answer() -> _Refused:
    low, high = SHED_RETRY_AFTER_S
    wait = random.randint(low, high)  # a spread of retries, not a secret
    return _Refused(503, "too many requests in progress; retry shortly", {"Retry-After": str(wait)})


def _is_json(headers: dict[bytes, bytes]) -> bool:
    """True for `application/json`, any `…+json`, or no declared type (read as JSON)."""
    kind = headers.get(b"content-type")
    if kind is None:
        return True
    media = kind.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class RequestGuard:
    """Size, time and well-formedness limits on every request; safe headers on every answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        read_timeout_s: float,
        max_in_flight: int = 0,
        service: str = "",
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.read_timeout_s = read_timeout_s
        self.max_in_flight = max_in_flight  # 0: no limit
        self.service = service
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then run the app with the body replayed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._over_limit(scope):
            await self._shed(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _over_limit(self, scope: Scope) -> bool:
        if not self.max_in_flight or self.in_flight < self.max_in_flight:
            return False
        return scope["path"] not in PROBE_PATHS  # a busy process is alive, may still be ready

    async def _shed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """503, once the request's body is read and dropped: on a kept-alive connection its
        bytes must not be taken for the next request's headers (`serve.GuardedHttpProtocol`
        counts what arrives after an answer as such). The limits of any request apply."""
        HTTP_SHED.labels(service=self.service).inc()
        labels = {"service": self.service, "method": scope["method"], "route": "shed"}
        HTTP_REQUESTS.labels(**labels, status="503").inc()
        try:
            if self._checked_head(scope) is not None:
                await self._body(receive)
        except _Refused as refused:
            await self._answer(refused, send)
            return
        await self._answer(_shed_answer(), send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            replay = await self._read(scope, receive)
        except _Refused as refused:
            await self._answer(refused, send)
            return
        if scope["method"] == "HEAD":
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        await self.app(scope, replay, _with_security_headers(send))

    async def _read(self, scope: Scope, receive: Receive) -> Receive:
        headers = self._checked_head(scope)
        if headers is None:
            return receive  # nothing to read (a chunked GET body is read by nobody)
        body = await self._body(receive)
        if body is None:
            return _replay(b"", receive)
        if body and not _is_json(headers):
            raise _Refused(415, [_NOT_JSON])
        if body:
            check_json(body)
        return _replay(body, receive)

    def _checked_head(self, scope: Scope) -> dict[bytes, bytes] | None:
        """Check the headers' size and declared length; the headers if a body is to be read,
        else None."""
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        size = sum(len(k) + len(v) + 4 for k, v in raw_headers)
        if size > self.max_header_bytes:
            raise _Refused(431, "request headers too large", {"Connection": "close"})
        headers = dict(raw_headers)
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise _Refused(413, "request body too large", {"Connection": "close"})
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS") and declared is None:
            return None
        return headers

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole body, within the size and time limits; None if the client went away."""
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            try:
                async with asyncio.timeout(self.read_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise _Refused(
                    408, "request body not received in time", {"Connection": "close"}
                ) from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body_bytes:
                raise _Refused(413, "request body too large", {"Connection": "close"})
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    @staticmethod
    async def _answer(refused: _Refused, send: Send) -> None:
        response = JSONResponse(
            {"detail": refused.detail}, status_code=refused.status, headers=refused.headers
        )
        await response({"type": "http"}, _no_receive, _with_security_headers(send))


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _without_body(send: Send) -> Send:
    """`send` for a HEAD request: the GET answer's status and headers, no body bytes."""

    async def headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return headers_only


def _with_security_headers(send: Send) -> Send:
    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [h for h in _SECURITY_HEADERS if h[0] not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return stamped


class RequestMetrics:
    """Counts and times requests per route template (ids are data); probes are left out."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record it under its route template."""
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = "500"

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            labels = {"service": self.service, "method": scope["method"], "route": template}
            HTTP_DURATION.labels(**labels).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(**labels, status=status).inc()


class ReadinessGauges:
    """`switchboard_ready{check}` for every readiness check of one service.

    Set by each `/readyz` and, at most every `max_age_s`, after a `/metrics` scrape: the
    kubelet probes only `/readyz?scope=http`, so without the scrape the Kafka and consumer
    checks would show what some earlier caller saw. The scrape starts the checks in the
    background and answers at once (a probe of an unreachable dependency takes up to its
    timeout, longer than a scrape may). A check that went away (a stalled consumer that
    recovered) leaves the series instead of staying at 0.
    """

    def __init__(self, runtime: ServiceRuntime, *, max_age_s: float = 5.0) -> None:
        self._runtime = runtime
        self._max_age_s = max_age_s
        self._checked_at = float("-inf")
        self._names: set[str] = set()
        self._running: asyncio.Task[None] | None = None

    def export(self, checks: dict[str, str], *, complete: bool) -> None:
        """Set the gauges from `checks`; `complete`: every check ran (not only HTTP's)."""
        service = self._runtime.name
        for check, outcome in checks.items():
            READINESS.labels(service=service, check=check).set(int(outcome == "ok"))
        if complete:
            for gone in self._names - checks.keys():
                with contextlib.suppress(KeyError):
                    READINESS.remove(service, gone)
            self._names = set(checks)
            self._checked_at = time.monotonic()
        else:
            self._names |= checks.keys()

    def refresh(self) -> None:
        """Run every check again in the background, unless done less than `max_age_s` ago."""
        stale = time.monotonic() - self._checked_at >= self._max_age_s
        if stale and (self._running is None or self._running.done()):
            self._running = asyncio.create_task(self._check(), name="readiness-gauges")

    async def _check(self) -> None:
        self.export(await self._runtime.health.readiness(), complete=True)


MAX_ID_LENGTH = 100

ResourceId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The resource's id")
]
"""The type of every id in a route's path: one longer than any id we issue is a 422 naming
`path.<name>` in every service, never a lookup (and a 404 in some, a 422 in others)."""


def api_router(prefix: str, *, tags: list[str]) -> APIRouter:
    """A router for a service's API: every route documents the shared error answers."""
    return APIRouter(prefix=prefix, tags=list(tags), responses=dict(ERROR_RESPONSES))


def operations_router(runtime: ServiceRuntime) -> APIRouter:
    """`/healthz`, `/readyz`, `/metrics` and the AsyncAPI document of the service's topics."""
    router = APIRouter(tags=["operations"])
    readiness = ReadinessGauges(runtime)

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @router.get(
        "/readyz",
        summary="Kafka and MongoDB are reachable and consumers progress",
        responses={503: {"description": "Not ready: `checks` says what fails"}},
    )
    async def readyz(
        scope: Annotated[
            Literal["all", "http"],
            Query(description="`http`: only what the HTTP API needs (for load balancers)"),
        ] = "all",
    ) -> JSONResponse:
        checks = await runtime.health.readiness(http_only=scope == "http")
        ready = all(v == "ok" for v in checks.values())
        readiness.export(checks, complete=scope == "all")
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        if scope == "all":
            body["info"] = runtime.health.details()
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        readiness.refresh()  # `switchboard_ready` as of the last few seconds, not the last probe
        # OpenMetrics when the scraper asks for it (Prometheus does): it carries exemplars
        encoder, media_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), media_type=media_type)

    @router.get("/asyncapi.json", summary="AsyncAPI 3 document of the topics this service uses")
    async def asyncapi() -> Response:
        return Response(runtime.asyncapi_json(), media_type="application/json")

    return router


def install_http(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Add the shared middleware and operations routes to a service's app."""
    settings = runtime.settings
    app.router.redirect_slashes = False  # a redirect would echo the Host header
    app.add_middleware(RequestMetrics, service=runtime.name)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_request_bytes,
        max_header_bytes=settings.max_header_bytes,
        read_timeout_s=settings.request_read_timeout_s,
        max_in_flight=settings.http_max_in_flight,
        service=runtime.name,
    )
    app.include_router(operations_router(runtime))

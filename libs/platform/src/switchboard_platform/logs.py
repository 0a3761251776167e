"""JSON log lines with trace and span ids, service and tenant — never personal data.

Each HTTP request and each consumed message runs in its own log scope; `bind_tenant` names
the tenant it acts for, and every line logged in that scope carries it. Exception messages
are withheld from log lines (errors of ours and of libraries quote input values) unless the
error is a network failure, whose message names hosts, not people.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

from aiokafka.errors import KafkaError
from opentelemetry import trace
from pymongo.errors import ConnectionFailure
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Receive, Scope, Send

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_NETWORK_ERRORS = (OSError, TimeoutError, ConnectionFailure, KafkaError)
_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


@dataclass(slots=True)
class _Scope:
    tenant: str | None = None


_scope: ContextVar[_Scope | None] = ContextVar("switchboard_log_scope", default=None)


@contextmanager
def log_scope(tenant: str | None = None) -> Iterator[None]:
    """A fresh log scope for one request or message; what is bound inside stays inside."""
    token = _scope.set(_Scope(tenant))
    try:
        yield
    finally:
        _scope.reset(token)


def bind_tenant(tenant: str | None) -> None:
    """Name the tenant the current request or message acts for, in its later log lines.

    Works from a worker thread too (FastAPI runs sync dependencies there): the thread sees
    the request's scope object and updates it.
    """
    current = _scope.get()
    if current is None:
        _scope.set(_Scope(tenant))
    else:
        current.tenant = tenant


def current_tenant() -> str | None:
    """The tenant bound in the current scope, if any."""
    current = _scope.get()
    return current.tenant if current is not None else None


class LogScopeMiddleware:
    """ASGI middleware giving every HTTP request its own log scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside a fresh scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with log_scope():
            await self.app(scope, receive, send)


def safe_exception_text(exc: BaseException) -> str:
    """`module.Type: message` for network errors, `module.Type (message withheld)` otherwise."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"{kind}: {exc}" if isinstance(exc, _NETWORK_ERRORS) else f"{kind} (message withheld)"


def safe_traceback(exc_info: ExcInfo) -> str:
    """The traceback of `exc_info` and its causes, frames and types only (see above)."""
    chain: list[str] = []
    exc: BaseException | None = exc_info[1]
    while exc is not None:
        frames = "".join(traceback.extract_tb(exc.__traceback__).format())
        chain.insert(0, f"Traceback (most recent call last):\n{frames}{safe_exception_text(exc)}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "\n\nwhich led to:\n\n".join(chain)


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids, the service and the tenant to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the record; never drops it."""
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        record.service = self._service
        record.tenant = current_tenant()
        return True


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: time, level, logger, message, context fields and extras."""

    def __init__(self) -> None:
        super().__init__(_FIELDS, rename_fields=_RENAMED)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """ISO 8601 in UTC with milliseconds."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        """Frames and exception types; messages only of network errors."""
        return safe_traceback(ei)


class AccessLogPrivacy(logging.Filter):
    """Strips the query string and client address from uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the `(client, method, path, version, status)` arguments in place."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _, method, path, version, status = args
            record.args = ("-", method, str(path).split("?", 1)[0], version, status)
        return True


class RepeatLimiter(logging.Filter):
    """Lets a repeated line of the noisy client libraries through once per `window_s`.

    aiokafka logs every failed connection attempt (several a second while a broker is
    away); the first line and then one per window, counting what was held back, say as
    much. Only loggers under `prefixes` are limited; WARNING and above of ours never are.
    """

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka",), window_s: float = 30.0) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._window_s = window_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass the first of a kind, then one per window with `repeated` set."""
        if not record.name.startswith(self._prefixes):
            return True
        key = (record.name, str(record.msg))
        now = record.created
        first, held = self._seen.get(key, (0.0, 0))
        if now - first >= self._window_s:
            if held:
                record.repeated = held  # lines like it held back since the last one
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:
                self._seen.clear()
            return True
        self._seen[key] = (first, held + 1)
        return False


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes JSON lines stamped with trace context, service and tenant (stderr by default)."""

    def __init__(self, service: str, stream: IO[str] | None = None) -> None:
        super().__init__(stream or sys.stderr)
        self.setFormatter(JsonLineFormatter())
        self.addFilter(RepeatLimiter())
        self.addFilter(TraceContextFilter(service))


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send JSON lines to stderr for the whole process, FastStream's and uvicorn's included.

    Other handlers on the root logger (an OTLP log exporter, pytest's capture) stay.
    """
    handler = JsonLinesHandler(service)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, JsonLinesHandler)]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # logs each URL, query included
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogPrivacy) for f in access.filters):
        access.addFilter(AccessLogPrivacy())
    route_faststream_logs()


def route_faststream_logs() -> None:
    """Send FastStream's log records through ours (it gives its logger a plain-text handler).

    Call after FastStream is imported; `configure_logging` calls it too.
    """
    broker_log = logging.getLogger("faststream")
    broker_log.handlers.clear()
    broker_log.propagate = True

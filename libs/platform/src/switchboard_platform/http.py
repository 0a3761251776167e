"""HTTP plumbing every service installs: request-size limit, metrics, health and docs routes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from .metrics import HTTP_DURATION, HTTP_REQUESTS

if TYPE_CHECKING:
    from .runtime import ServiceRuntime


class RequestLimits(BaseHTTPMiddleware):
    """Refuses bodies larger than the limit with 413 before anything reads them."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        super().__init__(app)
        self._max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Check the declared length, then the actual one."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_bytes):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        if request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
            if len(body) > self._max_bytes:
                return JSONResponse({"detail": "request body too large"}, status_code=413)
        return await call_next(request)


class RequestMetrics(BaseHTTPMiddleware):
    """Counts and times requests per route template (never per concrete path: ids are data)."""

    def __init__(self, app: Any, *, service: str) -> None:
        super().__init__(app)
        self._service = service

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Time the request and record it under its route template."""
        started = time.perf_counter()
        status = "500"
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            template = getattr(request.scope.get("route"), "path", "unmatched")
            labels = {"service": self._service, "method": request.method, "route": template}
            HTTP_DURATION.labels(**labels).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(**labels, status=status).inc()


def operations_router(runtime: ServiceRuntime) -> APIRouter:
    """`/healthz`, `/readyz`, `/metrics` and the AsyncAPI document of the service's topics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @router.get("/readyz", summary="Kafka and MongoDB are reachable and consumers progress")
    async def readyz(
        scope: Annotated[
            Literal["all", "http"],
            Query(description="`http`: only what the HTTP API needs (for load balancers)"),
        ] = "all",
    ) -> JSONResponse:
        checks = await runtime.health.readiness(http_only=scope == "http")
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi.json", summary="AsyncAPI 3 document of the topics this service uses")
    async def asyncapi() -> Response:
        return Response(runtime.asyncapi_json(), media_type="application/json")

    return router


def install_http(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Add the shared middleware and operations routes to a service's app."""
    app.add_middleware(RequestLimits, max_bytes=runtime.settings.max_request_bytes)
    app.add_middleware(RequestMetrics, service=runtime.name)
    app.include_router(operations_router(runtime))

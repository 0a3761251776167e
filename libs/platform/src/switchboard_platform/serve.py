"""Run one service process: JSON logs, then uvicorn until SIGTERM (what every image runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from .logs import configure_logging
from .settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(service: str, settings: S, create_app: Callable[[S], FastAPI]) -> None:
    """Serve `create_app(settings)` on the configured host and port; stop gracefully."""
    configure_logging(service)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=20,
    )

"""The services the dev runner starts: one line each."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    """A service package that runs with `python -m <module>` and listens on `port`."""

    name: str
    module: str
    port: int

    @property
    def env_prefix(self) -> str:
        """The prefix of its own variables: `crm-sync` reads `CRM_SYNC_PORT`."""
        return self.name.upper().replace("-", "_")


SERVICES: tuple[Service, ...] = (
    Service("intake", "switchboard_intake", 8001),
    Service("notes", "switchboard_notes", 8002),
    Service("notify", "switchboard_notify", 8003),
    Service("retention", "switchboard_retention", 8004),
    Service("crm-sync", "switchboard_crm_sync", 8005),
)


def missing_reason(service: Service) -> str | None:
    """Why `python -m <module>` cannot run yet, or None when it can."""
    try:
        spec = importlib.util.find_spec(f"{service.module}.__main__")
    except Exception as exc:  # the package is missing or its __init__ fails
        return f"{service.module} is not importable ({exc})"
    if spec is None:
        return f"{service.module} has no __main__ module yet"
    return None

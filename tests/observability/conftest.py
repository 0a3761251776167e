"""Debian's Prometheus (server and promtool) for the observability tests.

`make test` installs the `prometheus` package when it is missing (.ci/install-test-tools);
without it these tests skip and say how to get it. SWITCHBOARD_REQUIRE_PROMETHEUS=1 (set by
`make test` after installing it) turns the skip into a failure, so CI cannot pass by
skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "observability" / "prometheus"
HOW = "apt-get install --no-install-recommends prometheus (`make test` does it as root)"


def _binary(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        message = f"{name} is not installed: {HOW}"
        if os.environ.get("SWITCHBOARD_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool."""
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_server() -> str:
    """Path of the Prometheus server."""
    return _binary("prometheus")

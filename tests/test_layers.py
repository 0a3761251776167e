"""How the code is layered, checked: a service's domain does no I/O, no service imports another.

Each check imports in a fresh interpreter, so what one module pulls in is not hidden by what
the test session loaded before.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {
    "intake": "switchboard_intake",
    "notes": "switchboard_notes",
    "notify": "switchboard_notify",
    "retention": "switchboard_retention",
    "crm-sync": "switchboard_crm_sync",
}
IO_PACKAGES = (
    *("pymongo", "bson", "motor", "aiokafka", "faststream"),
    *("fastapi", "starlette", "httpx", "aiosmtplib", "uvicorn"),
)


@pytest.mark.parametrize("package", SERVICES.values())
def test_a_services_domain_module_loads_no_database_broker_or_http_package(package: str) -> None:
    probe = (
        f"import sys, {package}.domain; "
        f"print(' '.join(sorted(p for p in {IO_PACKAGES!r} if p in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == [], f"{package}.domain loads {loaded}"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = {p for s, p in SERVICES.items() if s != service}
    found = []
    for path in (ROOT / "services" / service / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in others]
    assert found == []

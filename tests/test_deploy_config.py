"""The deployment files agree with the code: topics, services, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from switchboard_contracts.topics import EVENT_TOPICS

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_creates_exactly_the_contract_topics() -> None:
    """kafka-init's list is a copy of EVENT_TOPICS (each with its .dlq): it must not drift."""
    listed = _compose()["services"]["kafka-init"]["environment"]["EVENT_TOPICS"].split()
    assert sorted(listed) == sorted(EVENT_TOPICS)


def test_compose_and_kubernetes_run_every_service_that_exists() -> None:
    services = sorted(
        p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()
    )
    assert set(services) <= set(_compose()["services"])
    assert set(services) <= {p.name for p in (ROOT / "deploy" / "k8s").iterdir() if p.is_dir()}

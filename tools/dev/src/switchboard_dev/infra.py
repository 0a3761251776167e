"""The Kafka and MongoDB of a dev run: the environment's, or embedded ones started here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from switchboard_dev.config import DevSettings
from switchboard_dev.sinks import dev_sinks, port_or_free
from switchboard_dev.traces import otlp_receiver
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo


@dataclass(frozen=True)
class Endpoints:
    """Where the services find Kafka and MongoDB."""

    kafka_bootstrap_servers: str
    mongodb_url: str
    notify_env: Mapping[str, str] = field(default_factory=dict)
    """Where notify's mail and SMS go: the local sinks' variables, when they were started."""
    telemetry_env: Mapping[str, str] = field(default_factory=dict)
    """Where every service sends its traces: the runner's own OTLP receiver, when started."""
    kafka_env: Mapping[str, str] = field(default_factory=dict)
    """Consumer settings for the embedded broker, when it was started."""
    embedded: tuple[EmbeddedKafka | EmbeddedMongo, ...] = ()
    """The embedded servers started here, which the runner watches."""


EMBEDDED_KAFKA_ENV = {"KAFKA_SESSION_TIMEOUT_MS": "2000"}
"""Tansu holds every group join for half the session, so a short one is a fast (re)start
(docs/decisions/0016); Apache Kafka refuses sessions under 6 s by default."""


@contextmanager
def dev_servers(
    settings: DevSettings,
    data_dir: Path,
    say: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> Iterator[Endpoints]:
    """Yield the endpoints, starting embedded servers for those not configured; stop them after.

    The same goes for notify's mail and SMS sinks (`sinks.py`), judged by `env`.
    """
    with ExitStack() as stack:
        kafka = settings.kafka_bootstrap_servers
        kafka_env: Mapping[str, str] = {}
        embedded: list[EmbeddedKafka | EmbeddedMongo] = []
        if kafka is None:
            kafka_env = EMBEDDED_KAFKA_ENV
            broker = EmbeddedKafka(port=settings.kafka_port, workdir=data_dir / "run")
            kafka = stack.enter_context(broker).bootstrap_servers
            embedded.append(broker)
            say(f"Kafka    {kafka}  embedded Tansu, in memory: empty at every start")
        else:
            say(f"Kafka    {kafka}  from KAFKA_BOOTSTRAP_SERVERS")
        mongodb = settings.mongodb_url
        if mongodb is None:
            server = EmbeddedMongo(
                port=settings.mongo_port, data_dir=data_dir / "mongo", workdir=data_dir / "run"
            )
            mongodb = stack.enter_context(server).url
            embedded.append(server)
            say(f"MongoDB  {mongodb}  embedded nx-27017, data in {data_dir / 'mongo'}")
        else:
            say("MongoDB  from MONGODB_URL")
        sinks = dev_sinks(
            os.environ if env is None else env,
            data_dir,
            say,
            smtp_port=settings.smtp_port,
            sms_port=settings.sms_port,
        )
        notify_env = stack.enter_context(sinks)
        telemetry_env = _trace_receiver(
            stack, os.environ if env is None else env, settings, data_dir, say
        )
        yield Endpoints(kafka, mongodb, notify_env, telemetry_env, kafka_env, tuple(embedded))


def _trace_receiver(
    stack: ExitStack,
    env: Mapping[str, str],
    settings: DevSettings,
    data_dir: Path,
    say: Callable[[str], None],
) -> dict[str, str]:
    """Start the OTLP receiver (traces.py) unless tracing goes elsewhere or is off."""
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        say(f"Traces   to {env['OTEL_EXPORTER_OTLP_ENDPOINT']} (OTEL_EXPORTER_OTLP_ENDPOINT)")
        return {}
    if env.get("SWITCHBOARD_TRACING") == "off":
        say("Traces   off (SWITCHBOARD_TRACING=off)")
        return {}
    folder = data_dir / "traces"
    port = port_or_free(settings.otlp_port, "OTLP receiver", say)
    endpoint = stack.enter_context(otlp_receiver(folder, port))
    say(f"Traces   {endpoint}  OTLP/HTTP receiver, spans in {folder}: switchboard trace <call-id>")
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "SWITCHBOARD_TRACING": "on"}

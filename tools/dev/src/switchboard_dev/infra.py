"""The Kafka and MongoDB of a dev run: the environment's, or embedded ones started here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from switchboard_dev.config import DevSettings
from switchboard_platform.embedded import EmbeddedKafka, EmbeddedMongo


@dataclass(frozen=True)
class Endpoints:
    """Where the services find Kafka and MongoDB."""

    kafka_bootstrap_servers: str
    mongodb_url: str


@contextmanager
def dev_servers(
    settings: DevSettings, data_dir: Path, say: Callable[[str], None]
) -> Iterator[Endpoints]:
    """Yield the endpoints, starting embedded servers for those not configured; stop them after."""
    with ExitStack() as stack:
        kafka = settings.kafka_bootstrap_servers
        if kafka is None:
            broker = EmbeddedKafka(port=settings.kafka_port, workdir=data_dir / "run")
            kafka = stack.enter_context(broker).bootstrap_servers
            say(f"Kafka    {kafka}  embedded Tansu, in memory: empty at every start")
        else:
            say(f"Kafka    {kafka}  from KAFKA_BOOTSTRAP_SERVERS")
        mongodb = settings.mongodb_url
        if mongodb is None:
            server = EmbeddedMongo(
                port=settings.mongo_port, data_dir=data_dir / "mongo", workdir=data_dir / "run"
            )
            mongodb = stack.enter_context(server).url
            say(f"MongoDB  {mongodb}  embedded nx-27017, data in {data_dir / 'mongo'}")
        else:
            say("MongoDB  from MONGODB_URL")
        yield Endpoints(kafka, mongodb)

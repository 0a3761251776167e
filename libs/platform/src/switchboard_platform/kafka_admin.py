"""Kafka administration: idempotent topic creation and a broker liveness probe."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from switchboard_contracts.topics import topic_config

__all__ = ["broker_answers", "ensure_topics"]

_NO_ERROR = 0


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 4,
    replication_factor: int = 1,
    timeout_ms: int = 10_000,
) -> None:
    """Create each topic in `topics` that does not exist yet, with its contract configuration
    (`retention.ms` no longer than the shortest retention of the data it carries:
    `switchboard_contracts.topics.topic_config`); existing topics are left as they are.
    """
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(t, partitions, replication_factor, topic_configs=topic_config(t))
                for t in missing
            ],
            timeout_ms=timeout_ms,
        )
    finally:
        await admin.close()
    # The admin client reports per-topic failures in the response instead of raising.
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code in (_NO_ERROR, TopicAlreadyExistsError.errno):
            continue
        error_type = for_code(code)
        raise error_type(f"could not create topic {topic!r}: {message or error_type.__name__}")


def broker_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a Kafka Metadata v0 request to `host:port` gets a broker list back (blocking)."""
    client_id = b"switchboard-probe"
    correlation_id = 4711
    # Request header: api key 3 (Metadata), version 0, correlation id, client id.
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)  # no topics named: v0 answers brokers plus all topics
    try:
        with socket.create_connection((host, port), timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(4, socket.MSG_WAITALL)
            if len(header) < 4:
                return False
            (size,) = struct.unpack(">i", header)
            reply = sock.recv(size, socket.MSG_WAITALL)
    except OSError:
        return False
    if len(reply) < 8:
        return False
    got_correlation, brokers = struct.unpack(">ii", reply[:8])
    return bool(got_correlation == correlation_id and brokers >= 1)

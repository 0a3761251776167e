"""Idempotent Kafka topic creation, for start-up, the dev runner and test sessions."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

__all__ = ["ensure_topics"]

_NO_ERROR = 0


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 4,
    replication_factor: int = 1,
    timeout_ms: int = 10_000,
) -> None:
    """Create each topic in `topics` that does not exist yet; existing ones are left as they are."""
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication_factor) for t in missing], timeout_ms=timeout_ms
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

"""The FastStream Kafka broker every service uses: connection, security, acks, telemetry."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from .settings import ServiceSettings


def broker_security(settings: ServiceSettings) -> BaseSecurity | None:
    """Translate the KAFKA_SECURITY_PROTOCOL / SASL / TLS settings into FastStream's security."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
        raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required for SASL")
    user = settings.kafka_sasl_username
    password = settings.kafka_sasl_password.get_secret_value()
    kinds: dict[str, type[SASLPlaintext] | type[SASLScram256] | type[SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    return kinds[settings.kafka_sasl_mechanism](
        username=user, password=password, ssl_context=context, use_ssl=use_ssl
    )


def client_security(settings: ServiceSettings) -> dict[str, Any]:
    """The same security settings as keyword arguments of an aiokafka client."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL"):
        if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
            raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required for SASL")
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return kwargs


def create_broker(
    settings: ServiceSettings,
    *,
    client_id: str,
    middlewares: Sequence[Any] = (),
    description: str | None = None,
) -> KafkaBroker:
    """Build (not connect) the service's broker: acks from all replicas, no auto topic creation.

    The idempotent producer stays off: the embedded dev broker does not support it, and
    consumers are idempotent on the event id anyway (docs/decisions/0003).
    """
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        allow_auto_create_topics=False,
        security=broker_security(settings),
        middlewares=tuple(middlewares),
        graceful_timeout=15.0,
        description=description,
        linger_ms=2,
        request_timeout_ms=15_000,
        # FastStream's own per-message access lines go to our JSON logs, at DEBUG
        logger=logging.getLogger("switchboard.kafka"),
        log_level=logging.DEBUG,
    )

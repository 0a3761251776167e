"""Kafka topic names of the Switchboard event contract (DESIGN.md, "Events")."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

CALL_RECEIVED: Final = "call.received"
TENANT_CHANGED: Final = "tenant.changed"
NOTE_CREATED: Final = "note.created"
NOTE_DELETED: Final = "note.deleted"
NOTE_RATED: Final = "note.rated"
CONSENT_CHANGED: Final = "consent.changed"
RETENTION_DUE: Final = "retention.due"
RETENTION_COMPLETED: Final = "retention.completed"
DSR_REQUESTED: Final = "dsr.requested"
DSR_FRAGMENT: Final = "dsr.fragment"
NOTIFICATION_SENT: Final = "notification.sent"
NOTIFICATION_FAILED: Final = "notification.failed"
CRM_SYNCED: Final = "crm.synced"
CRM_FAILED: Final = "crm.failed"

EVENT_TOPICS: Final[tuple[str, ...]] = (
    CALL_RECEIVED,
    TENANT_CHANGED,
    NOTE_CREATED,
    NOTE_DELETED,
    NOTE_RATED,
    CONSENT_CHANGED,
    RETENTION_DUE,
    RETENTION_COMPLETED,
    DSR_REQUESTED,
    DSR_FRAGMENT,
    NOTIFICATION_SENT,
    NOTIFICATION_FAILED,
    CRM_SYNCED,
    CRM_FAILED,
)


def dead_letter_topic(topic: str) -> str:
    """Return the dead-letter topic that collects unprocessable messages of `topic`."""
    return f"{topic}.dlq"


ALL_TOPICS: Final[tuple[str, ...]] = EVENT_TOPICS + tuple(
    dead_letter_topic(t) for t in EVENT_TOPICS
)


_DAY_MS: Final = 24 * 3600 * 1000
RECORDING_DAYS: Final = 30
"""R-RET-2, the shortest retention period of any category: recordings (and references to them)."""
CALL_DATA_DAYS: Final = 60
"""R-RET-1: call data."""
PROSPECT_DAYS: Final = 90
"""R-RET-3: onboarding data of a prospect, the shortest period of a tenant profile."""

RETENTION_DAYS: Final[Mapping[str, int]] = MappingProxyType(
    {
        CALL_RECEIVED: RECORDING_DAYS,  # carries the recording reference (R-RET-2)
        TENANT_CHANGED: PROSPECT_DAYS,  # a prospect's profile (R-RET-3)
        NOTE_CREATED: RECORDING_DAYS,  # carries the recording reference (R-RET-2)
        NOTE_DELETED: CALL_DATA_DAYS,
        NOTE_RATED: CALL_DATA_DAYS,
        CONSENT_CHANGED: CALL_DATA_DAYS,  # a caller's recording consent is call data
        RETENTION_DUE: RECORDING_DAYS,  # erasure orders name the subject (phone, e-mail, name)
        RETENTION_COMPLETED: CALL_DATA_DAYS,  # counts only; the receipt store keeps the proof
        DSR_REQUESTED: RECORDING_DAYS,  # names the subject
        DSR_FRAGMENT: RECORDING_DAYS,  # copies of every record, recordings' references included
        NOTIFICATION_SENT: CALL_DATA_DAYS,
        NOTIFICATION_FAILED: CALL_DATA_DAYS,
        CRM_SYNCED: CALL_DATA_DAYS,
        CRM_FAILED: CALL_DATA_DAYS,
    }
)
"""Days each event topic keeps its messages: no longer than the shortest category it carries."""


def retention_ms(topic: str) -> int | None:
    """Kafka `retention.ms` of `topic` (a `.dlq` keeps what its topic keeps); None if unknown."""
    days = RETENTION_DAYS.get(topic.removesuffix(".dlq"))
    return None if days is None else days * _DAY_MS


SEGMENT_MS: Final = _DAY_MS
"""Kafka deletes whole segments only, and a segment is closed after `segment.ms` (7 days by
default): a quiet topic would keep a record up to a week past its `retention.ms`. A daily
segment bounds that to a day."""


def topic_config(topic: str) -> dict[str, str]:
    """The configuration a contract topic is created with: `retention.ms`, a daily
    `segment.ms` (so records leave within a day of it), delete policy.

    Empty for a topic that is not part of the contract (the broker's defaults apply).
    """
    ms = retention_ms(topic)
    if ms is None:
        return {}
    return {"retention.ms": str(ms), "segment.ms": str(SEGMENT_MS), "cleanup.policy": "delete"}

"""Kafka topic names of the Switchboard event contract (DESIGN.md, "Events")."""

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

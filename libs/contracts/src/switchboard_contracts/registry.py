"""Every payload model known to this version of the contracts, by CloudEvents type."""

from types import MappingProxyType
from typing import Final

from .calls import CallReceived
from .consent import ConsentChanged
from .delivery import CrmFailed, CrmSynced, NotificationFailed, NotificationSent
from .dsr import DsrFragment, DsrRequested
from .envelope import EventPayload
from .notes import NoteCreated, NoteDeleted, NoteRated
from .retention import RetentionCompleted, RetentionDue
from .tenants import TenantChanged

PAYLOAD_MODELS: Final[tuple[type[EventPayload], ...]] = (
    CallReceived,
    TenantChanged,
    NoteCreated,
    NoteDeleted,
    NoteRated,
    ConsentChanged,
    RetentionDue,
    RetentionCompleted,
    DsrRequested,
    DsrFragment,
    NotificationSent,
    NotificationFailed,
    CrmSynced,
    CrmFailed,
)

PAYLOADS_BY_TYPE: Final = MappingProxyType({m.event_type(): m for m in PAYLOAD_MODELS})


def payload_model(event_type: str) -> type[EventPayload] | None:
    """Return the payload model for a CloudEvents type, or None if unknown here."""
    return PAYLOADS_BY_TYPE.get(event_type)

"""One valid example payload per event type, for tests across services and the exported schemas."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

from .envelope import Event, EventPayload, make_event
from .registry import PAYLOAD_MODELS

P = TypeVar("P", bound=EventPayload)

TENANT_ID: Final = "kanzlei-meyer"
CALL_ID: Final = "call-0001"
NOTE_ID: Final = "note-0001"
CALLER_PHONE: Final = "+4915112345678"
_CALLER = {"name": "Anna Schmidt", "phone": CALLER_PHONE, "email": "anna@example.de"}
_AT = "2025-03-14T09:30:00Z"
_LATER = "2025-03-14T09:45:00Z"

_NOTE = {"note_id": NOTE_ID, "call_id": CALL_ID, "tenant_id": TENANT_ID}
_NOTIFICATION = {
    "notification_id": "ntf-0001",
    "note_id": NOTE_ID,
    "tenant_id": TENANT_ID,
    "channel": "email",
    "recipient": "empfang@kanzlei-meyer.de",
    "legal_basis": "consent",
    "provider": "smtp",
    "attempted_at": _LATER,
}
_CRM = {
    "transfer_id": "xfer-0001",
    "note_id": NOTE_ID,
    "tenant_id": TENANT_ID,
    "connector": "webhook",
    "destination": "crm.kanzlei-meyer.de",
    "destination_region": "EU",
    "legal_basis": "contract",
    "attempted_at": _LATER,
}
_RECORDING = {"consent": True, "url": "s3://recordings/kanzlei-meyer/call-0001.ogg"}
_SUBJECT = {"kind": "phone", "value": CALLER_PHONE}
_CALL = {
    "call_id": CALL_ID,
    "tenant_id": TENANT_ID,
    "agent_id": "agent-7",
    "caller": _CALLER,
    "concern": "Bittet um Rückruf wegen des Termins am Freitag",
    "contact_person": "Dr. Meyer",
    "started_at": _AT,
    "duration_seconds": 95,
    "forwarded_from": "+492411234567",
    "recording": _RECORDING,
}

# Keyed by `<topic>.v<version>`, like the exported schema files.
SAMPLE_DATA: Final[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "call.received.v1": {**_CALL, "dialed_number": "+492419876543", "received_at": _AT},
        "tenant.changed.v1": {
            "tenant_id": TENANT_ID,
            "change": "created",
            "name": "Kanzlei Meyer",
            "industry": "law",
            "secrecy_bound": True,
            "contract_status": "active",
            "contract_signed_on": "2025-01-02",
            "forwarding_numbers": ["+492411234567"],
            "call_hours": [{"weekday": 1, "start": "08:00", "end": "17:00"}],
            "contact_persons": [{"name": "Dr. Meyer", "position": "Partner"}],
            "recipients": [{"channel": "email", "address": "empfang@kanzlei-meyer.de"}],
        },
        "note.created.v1": {**_CALL, "note_id": NOTE_ID, "created_at": _AT},
        "note.deleted.v1": {
            **_NOTE,
            "deleted_at": _LATER,
            "deleted_by": "client:kanzlei-meyer/admin",
            "reason": "client_request",
        },
        "note.rated.v1": {
            **_NOTE,
            "agent_id": "agent-7",
            "score": 5,
            "comment": "Sehr gut aufgenommen",
            "rated_at": _LATER,
            "rated_by": "client:kanzlei-meyer/admin",
        },
        "consent.changed.v1": {
            "consent_id": "consent-0001",
            "tenant_id": TENANT_ID,
            "subject": _SUBJECT,
            "purpose": "recording",
            "channel": "none",
            "status": "granted",
            "occurred_at": _AT,
            "method": "verbal_during_call",
            "text_version": "recording-notice-de-2024-05",
            "recorded_by": "agent-7",
            "call_id": CALL_ID,
        },
        "retention.due.v1": {
            "request_id": "ret-0001",
            "scope": {
                "kind": "category",
                "category": "call_data",
                "cutoff": "2025-01-13T00:00:00Z",
            },
            "reason": "retention_policy",
            "issued_at": "2025-03-14T02:00:00Z",
            "holds": [
                {
                    "hold_id": "hold-0001",
                    "reason": "R-RET-5: tax audit 2025, § 147 AO",
                    "until": "2026-12-31",
                    "tenant_id": TENANT_ID,
                }
            ],
        },
        "retention.completed.v1": {
            "request_id": "ret-0001",
            "service": "notes",
            "erased": [{"category": "call_data", "collection": "notes", "count": 42}],
            "retained": [
                {
                    "category": "legal_hold",
                    "collection": "invoices",
                    "count": 1,
                    "reason": "R-RET-5: invoice, § 147 AO, 10 years",
                    "retained_until": "2035-12-31",
                    "hold_id": "hold-0001",
                }
            ],
            "completed_at": "2025-03-14T02:00:05Z",
        },
        "dsr.requested.v1": {
            "request_id": "dsr-0001",
            "right": "access",
            "identifiers": [_SUBJECT, {"kind": "email", "value": "anna@example.de"}],
            "requested_at": _AT,
            "due_at": "2025-04-14T09:30:00Z",
            "retention_periods": {"call_data": "P60D", "customer_account": "P5Y"},
        },
        "dsr.fragment.v1": {
            "request_id": "dsr-0001",
            "service": "notes",
            "right": "access",
            "records": [
                {
                    "category": "call_data",
                    "purpose": "Forwarding call notes to the client (Art. 28)",
                    "recipients": ["Kanzlei Meyer (client)"],
                    "retained_until": "2025-05-13T09:30:00Z",
                    "data": {"note_id": NOTE_ID, "caller": "Anna Schmidt", "concern": "Rückruf"},
                }
            ],
            "counts": [{"category": "call_data", "collection": "notes", "count": 1}],
            "completed_at": _LATER,
        },
        "notification.sent.v1": {**_NOTIFICATION, "provider_message_id": "<0001@mail.example>"},
        "notification.failed.v1": {
            **_NOTIFICATION,
            "error": "550 mailbox unavailable",
            "will_retry": False,
        },
        "crm.synced.v1": {**_CRM, "status_code": 201},
        "crm.failed.v1": {
            **_CRM,
            "status_code": 503,
            "error": "Service Unavailable",
            "will_retry": True,
        },
    }
)


def sample_key(model: type[EventPayload]) -> str:
    """Return the key of `model`'s sample in SAMPLE_DATA, e.g. `call.received.v1`."""
    return f"{model.topic}.v{model.version}"


def sample_payload(model: type[P], **overrides: Any) -> P:
    """Return a valid example of `model`, with `overrides` replacing top-level fields."""
    return model.model_validate({**SAMPLE_DATA[sample_key(model)], **overrides})


def sample_event(model: type[P], *, tenant_id: str = TENANT_ID, **overrides: Any) -> Event[P]:
    """Return a sample payload of `model` wrapped in a fresh envelope."""
    return make_event(
        sample_payload(model, **overrides), tenant_id=tenant_id, source="/switchboard/samples"
    )


def all_sample_payloads() -> tuple[EventPayload, ...]:
    """Return one sample payload of every registered model."""
    return tuple(sample_payload(m) for m in PAYLOAD_MODELS)

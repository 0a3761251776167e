"""Which note fields go to which CRM properties: defaults per connector, a tenant's changes.

A tenant may rename a target property (`"record": {"concern": "anliegen__c"}`), leave a
field out (`null`) and add fixed values (`"fixed": {"hs_call_disposition": "…"}`). The value
of each field is formatted as the connector expects it (HubSpot: milliseconds, Pipedrive:
`YYYY-MM-DD HH:MM:SS`, Salesforce: a date for `ActivityDate`) whatever its target is named.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from switchboard_platform.inputs import Line

from .domain import Kind, NoteContent

PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,99}$")]
_FIXED_TEXT: TypeAdapter[str] = TypeAdapter(Annotated[Line, Field(max_length=200)])
_INT64 = (-(2**63), 2**63 - 1)  # what a MongoDB document (and every CRM) holds


def _fixed_value(value: object) -> str | int | bool:
    """One check with one message, instead of an error per member of a union."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError("an integer must fit in 64 bits")
        return value
    if isinstance(value, str):
        try:
            return _FIXED_TEXT.validate_python(value)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    raise ValueError("a fixed value is a string (at most 200 characters), an integer or a boolean")


FixedValue = Annotated[
    str | int | bool,
    PlainValidator(_fixed_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 200},
                {"type": "integer", "minimum": _INT64[0], "maximum": _INT64[1]},
                {"type": "boolean"},
            ]
        }
    ),
]
MAX_ENTRIES = 50


class NoteField(StrEnum):
    """A note field a mapping can send."""

    TITLE = "title"
    SUMMARY = "summary"
    CONCERN = "concern"
    CONTACT_PERSON = "contact_person"
    CALLER_NAME = "caller_name"
    CALLER_FIRST_NAME = "caller_first_name"
    CALLER_LAST_NAME = "caller_last_name"
    CALLER_PHONE = "caller_phone"
    CALLER_EMAIL = "caller_email"
    CALLER_COMPANY = "caller_company"
    STARTED_AT = "started_at"
    ENDED_AT = "ended_at"
    DURATION = "duration"
    FORWARDED_FROM = "forwarded_from"
    NOTE_ID = "note_id"


class FieldMapping(BaseModel):
    """A tenant's changes to its connector's default mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record: dict[NoteField, PropertyName | None] = Field(
        default_factory=dict, max_length=MAX_ENTRIES, description="Renames on the call record"
    )
    contact: dict[NoteField, PropertyName | None] = Field(
        default_factory=dict, max_length=MAX_ENTRIES, description="Renames on the contact"
    )
    fixed: dict[PropertyName, FixedValue] = Field(
        default_factory=dict, max_length=MAX_ENTRIES, description="Added to the call record"
    )
    contact_fixed: dict[PropertyName, FixedValue] = Field(
        default_factory=dict, max_length=MAX_ENTRIES, description="Added to the contact"
    )
    hubspot_object: Literal["calls", "notes"] | None = Field(
        default=None, description="HubSpot: log a call engagement (default) or a note"
    )
    contact_key_field: PropertyName | None = Field(
        default=None,
        description="Salesforce: the Contact's external id field that holds the caller's phone",
    )

    @model_validator(mode="after")
    def _one_rule_per_target(self) -> Self:
        for renames, name in ((self.record, "record"), (self.contact, "contact")):
            targets = [t for t in renames.values() if t is not None]
            if len(targets) != len(set(targets)):
                raise ValueError(f"{name}: two fields mapped onto one property")
        return self


class MappingRefused(ValueError):
    """A mapping option that the connector kind does not have; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_for_kind(mapping: FieldMapping, kind: Kind) -> None:
    """Refuse options another kind owns; webhooks follow their schema (only `fixed`)."""
    if mapping.hubspot_object is not None and kind is not Kind.HUBSPOT:
        raise MappingRefused("hubspot_object", "only for hubspot connectors")
    if mapping.contact_key_field is not None and kind is not Kind.SALESFORCE:
        raise MappingRefused("contact_key_field", "only for salesforce connectors")
    if kind is Kind.WEBHOOK:
        for name in ("record", "contact", "contact_fixed"):
            if getattr(mapping, name):
                raise MappingRefused(name, "webhooks send the versioned schema; use `fixed`")


F = NoteField
_DEFAULTS: dict[str, tuple[dict[NoteField, str], dict[str, Any]]] = {
    "hubspot:calls": (
        {
            F.TITLE: "hs_call_title",
            F.SUMMARY: "hs_call_body",
            F.STARTED_AT: "hs_timestamp",
            F.CALLER_PHONE: "hs_call_from_number",
            F.FORWARDED_FROM: "hs_call_to_number",
            F.DURATION: "hs_call_duration",
            F.NOTE_ID: "hs_call_external_id",
        },
        {"hs_call_direction": "INBOUND", "hs_call_status": "COMPLETED"},
    ),
    "hubspot:notes": ({F.SUMMARY: "hs_note_body", F.STARTED_AT: "hs_timestamp"}, {}),
    "hubspot:contact": (
        {
            F.CALLER_FIRST_NAME: "firstname",
            F.CALLER_LAST_NAME: "lastname",
            F.CALLER_PHONE: "phone",
            F.CALLER_EMAIL: "email",
            F.CALLER_COMPANY: "company",
        },
        {},
    ),
    "salesforce:record": (
        {
            F.TITLE: "Subject",
            F.SUMMARY: "Description",
            F.STARTED_AT: "ActivityDate",
            F.DURATION: "CallDurationInSeconds",
            F.NOTE_ID: "Switchboard_Note_Id__c",
        },
        {"Status": "Completed", "TaskSubtype": "Call", "CallType": "Inbound"},
    ),
    "salesforce:contact": (
        {
            F.CALLER_FIRST_NAME: "FirstName",
            F.CALLER_LAST_NAME: "LastName",
            F.CALLER_PHONE: "Phone",
            F.CALLER_EMAIL: "Email",
        },
        {},
    ),
    "pipedrive:record": (
        {
            F.TITLE: "subject",
            F.SUMMARY: "note",
            F.CALLER_PHONE: "from_phone_number",
            F.FORWARDED_FROM: "to_phone_number",
            F.STARTED_AT: "start_time",
            F.ENDED_AT: "end_time",
            F.DURATION: "duration",
        },
        {"outcome": "connected"},
    ),
    "pipedrive:contact": (
        {F.CALLER_NAME: "name", F.CALLER_PHONE: "phone", F.CALLER_EMAIL: "email"},
        {},
    ),
    "webhook:record": ({}, {}),
    "webhook:contact": ({}, {}),
}
SALESFORCE_CONTACT_KEY = "Switchboard_Caller_Phone__c"


def _record_key(kind: Kind, mapping: FieldMapping) -> str:
    if kind is Kind.HUBSPOT:
        return f"hubspot:{mapping.hubspot_object or 'calls'}"
    return f"{kind}:record"


def _merged(
    defaults: tuple[dict[NoteField, str], dict[str, Any]],
    renames: dict[NoteField, str | None],
    fixed: dict[str, Any],
) -> tuple[dict[NoteField, str], dict[str, Any]]:
    fields: dict[NoteField, str | None] = {**defaults[0], **renames}
    return {f: t for f, t in fields.items() if t is not None}, {**defaults[1], **fixed}


def record_rules(kind: Kind, mapping: FieldMapping) -> tuple[dict[NoteField, str], dict[str, Any]]:
    """The call record's (field → property) rules and fixed values for this connector."""
    return _merged(_DEFAULTS[_record_key(kind, mapping)], mapping.record, mapping.fixed)


def contact_rules(kind: Kind, mapping: FieldMapping) -> tuple[dict[NoteField, str], dict[str, Any]]:
    """The contact's (field → property) rules and fixed values for this connector."""
    return _merged(_DEFAULTS[f"{kind}:contact"], mapping.contact, mapping.contact_fixed)


def effective(kind: Kind, mapping: FieldMapping) -> dict[str, Any]:
    """The whole mapping in force, defaults included, as the API shows it."""
    record, fixed = record_rules(kind, mapping)
    contact, contact_fixed = contact_rules(kind, mapping)
    shown: dict[str, Any] = {
        "record": {str(f): t for f, t in record.items()},
        "contact": {str(f): t for f, t in contact.items()},
        "fixed": fixed,
        "contact_fixed": contact_fixed,
    }
    if kind is Kind.HUBSPOT:
        shown["hubspot_object"] = mapping.hubspot_object or "calls"
    if kind is Kind.SALESFORCE:
        shown["contact_key_field"] = mapping.contact_key_field or SALESFORCE_CONTACT_KEY
    return shown


def raw_value(note: NoteContent, field: NoteField) -> Any:
    """A field's value before the connector formats it (None: not known for this note)."""
    values: dict[NoteField, Any] = {
        F.TITLE: note.title,
        F.SUMMARY: note.summary,
        F.CONCERN: note.concern,
        F.CONTACT_PERSON: note.contact_person,
        F.CALLER_NAME: note.caller_name,
        F.CALLER_FIRST_NAME: note.first_name,
        F.CALLER_LAST_NAME: note.last_name,
        F.CALLER_PHONE: note.caller_phone,
        F.CALLER_EMAIL: note.caller_email,
        F.CALLER_COMPANY: note.caller_company,
        F.STARTED_AT: note.started_at,
        F.ENDED_AT: note.ended_at,
        F.DURATION: note.duration_seconds,
        F.FORWARDED_FROM: note.forwarded_from,
        F.NOTE_ID: note.note_id,
    }
    return values[field]


def properties(
    note: NoteContent,
    rules: tuple[dict[NoteField, str], dict[str, Any]],
    formatter: Any,
) -> dict[str, Any]:
    """The properties to send: each rule's value formatted, then the fixed values."""
    fields, fixed = rules
    out: dict[str, Any] = {}
    for field, target in fields.items():
        value = raw_value(note, field)
        if value is not None:
            out[target] = formatter(field, value, target)
    out.update(fixed)
    return out

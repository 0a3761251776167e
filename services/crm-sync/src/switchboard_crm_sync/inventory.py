"""What personal data crm-sync keeps, for retention sweeps and data-subject requests (issue 11).

- **Transfers** hold the caller's phone (`caller_phone`) for as long as they live, and the
  note's content (`content.caller_*`, concern) only until the transfer is done: a synced,
  cancelled or deleted transfer is found by the caller's phone alone. A caller's erasure
  leaves the transfer without either (its log stays), so a redelivered `note.created`
  cannot send the note again.
- **Records** (note → CRM record id) and **contacts** (caller → CRM contact id) link a
  caller to the client's CRM; they carry the caller's phone for that reason.
- **Connectors** and **tenants** are the client's account (no caller data); the
  credentials never leave in an export.
- **Deleted notes** are tombstones (ids, when and why, no caller data) that keep a late
  `note.created` from sending a deleted note; they expire with the call's data.

What crm-sync erases is what it holds itself. The copies in the client's CRM are the
client's (the controller's) own records: see the README, "Retention and data-subject
requests", for why a retention erasure does not delete them there.
"""

from __future__ import annotations

from datetime import datetime

from switchboard_contracts.common import SubjectKind
from switchboard_platform.mongo import Document
from switchboard_platform.retention_participant import Inventory, PersonalData, Tombstone

from .connector_store import CONNECTORS
from .deleted_note_store import DELETED_NOTES
from .record_store import CONTACTS, RECORDS
from .tenant_store import TENANTS
from .transfer_store import TRANSFERS

CRM = "the client's CRM (HubSpot, Salesforce, Pipedrive or its webhook receiver)"


def _erased(now: datetime) -> Document:
    return {"erased_at": now}


ERASED_TRANSFER = Tombstone(removes=("caller_phone", "content"), marks=_erased)
"""An erased caller's transfer keeps its id and log (what went where, when: R-API-2) and
loses the caller: `note.created` stays 30 days on Kafka, and a redelivery finds the transfer
and sends nothing again; one still pending finds no content and is cancelled."""

TRANSFER_LOG = PersonalData(
    collection=TRANSFERS,
    purpose="Call note transferred to the client's CRM on its instruction, and the log of "
    "each attempt (Art. 28 GDPR, R-API-1, R-API-2)",
    recipients=(CRM,),
    subject_fields={
        SubjectKind.PHONE: ("caller_phone",),
        SubjectKind.EMAIL: ("content.caller_email",),
        SubjectKind.NAME: ("content.caller_name",),
    },
    # the phone is held twice (caller_phone, content.caller_phone): corrected at the source
    rectifiable={
        "name": "content.caller_name",
        "email": "content.caller_email",
        "company": "content.caller_company",
    },
    private_fields=("claim", "due_at", "created_ts", "trace_id", "retry_from"),
    tombstone=ERASED_TRANSFER,
)
CRM_RECORDS = PersonalData(
    collection=RECORDS,
    purpose="Which record in the client's CRM a call note became, so it is never made twice "
    "and can be deleted there when the client deletes the note (R-NOTE-2)",
    recipients=(CRM,),
    subject_fields={SubjectKind.PHONE: ("caller_phone",)},
)
CRM_CONTACTS = PersonalData(
    collection=CONTACTS,
    purpose="Which contact in the client's CRM a caller is, so two calls make one contact",
    recipients=(CRM,),
    subject_fields={SubjectKind.PHONE: ("caller_phone",)},
)
CONNECTOR_SETTINGS = PersonalData(
    collection=CONNECTORS,
    purpose="The client's CRM connector: where its call notes go (Art. 28 GDPR)",
    private_fields=("credentials", "credentials_version", "paused_until", "failures_in_a_row"),
)
TENANT_PROFILES = PersonalData(
    collection=TENANTS,
    purpose="The client's secrecy duty and contract status, which decide what may leave",
)
DELETION_TOMBSTONES = PersonalData(
    collection=DELETED_NOTES,
    purpose="Which notes the client deleted, so a late copy of one is never sent (R-NOTE-2)",
)
INVENTORY = Inventory(
    service="crm-sync",
    passed_on="call records and contacts already created in the client's CRM keep the old "
    "values; pending transfers carry the corrected ones. Ask the client to correct them "
    "there (Art. 19 GDPR)",
    collections=(
        TRANSFER_LOG,
        CRM_RECORDS,
        CRM_CONTACTS,
        CONNECTOR_SETTINGS,
        TENANT_PROFILES,
        DELETION_TOMBSTONES,
    ),
    legal_basis="Art. 6(1)(b) and Art. 28 GDPR: transfers on the client's instruction",
)

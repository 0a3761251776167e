"""Settings of the retention service (prefix `RETENTION_`, plus the shared ones)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from switchboard_platform.settings import ServiceSettings

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,49}$")


class RetentionSettings(ServiceSettings):
    """Environment of the retention service."""

    model_config = SettingsConfigDict(
        env_prefix="RETENTION_", extra="ignore", populate_by_name=True
    )

    port: int = Field(8004, ge=1, le=65535)
    mongodb_database: str = "retention"
    sweep_interval_s: int = Field(
        3600,
        ge=0,
        description="A sweep runs this often (one per interval across replicas); 0: only on "
        "demand (POST /v1/sweeps)",
    )
    answer_timeout_s: float = Field(
        900.0,
        gt=0,
        description="A sweep or request still missing a participant's answer this long after "
        "it was issued is `incomplete` (`partially_completed`); later answers complete it",
    )
    participants: str = Field(
        "intake,notes,notify,crm-sync",
        description="Comma-separated services that hold personal data and must answer every "
        "retention.due and dsr.requested",
    )
    check_interval_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How often answer deadlines, scheduled sweeps and the gauges are checked",
    )
    verify_interval_s: int = Field(
        3600,
        ge=0,
        description="How often each replica recomputes the receipt chain (R-RET-6) into "
        "switchboard_retention_receipt_chain_valid, which SwitchboardReceiptChainBroken "
        "watches; the first pass verifies at start; 0: only on demand (GET /v1/receipts/verify)",
    )
    dsr_near_due_days: int = Field(
        7, ge=1, le=30, description="An open request is `near_due` this many days before due_at"
    )

    @field_validator("participants")
    @classmethod
    def _service_names(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names or not all(_SERVICE_NAME.fullmatch(n) for n in names):
            raise ValueError("participants must be a comma-separated list of service names")
        return ",".join(dict.fromkeys(names))

    @property
    def participant_names(self) -> tuple[str, ...]:
        """The services every order and request waits for."""
        return tuple(self.participants.split(","))

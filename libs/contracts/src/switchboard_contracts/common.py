"""Value shapes shared by several payloads: people, data subjects, phone numbers, bounded text."""

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

_E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_E164_RE = re.compile(_E164_PATTERN)

E164 = Annotated[
    str,
    StringConstraints(pattern=_E164_PATTERN),
    Field(description="Phone number in E.164 notation", examples=["+492411234567"]),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=5000)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=100)]

EARLIEST_YEAR, LATEST_YEAR = 1900, 2199
INT64_MAX = 2**63 - 1


def _in_years(moment: datetime) -> datetime:
    """A time within 1900-2199; one without an offset is read as UTC, as services write it.

    Years are checked as written, before any arithmetic: `0001-01-01T00:00+01:00` would
    overflow on its way to UTC, `9999-12-31` stop a retention clock that starts from it.
    """
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(f"lies outside the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _fits_int64(value: int) -> int:
    if value > INT64_MAX:
        raise ValueError("exceeds the largest 64-bit integer (what MongoDB stores)")
    return value


def _day_in_years(day: date) -> date:
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueError(f"lies outside the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return day


Timestamp = Annotated[datetime, AfterValidator(_in_years)]
"""Every time in a contract: within 1900-2199, never naive (a naive one is UTC)."""
Day = Annotated[date, AfterValidator(_day_in_years)]
"""Every calendar day in a contract (contract dates, a hold's end): within 1900-2199."""
Int64 = Annotated[int, AfterValidator(_fits_int64)]
"""An integer a database can store: at most 2**63 - 1 (bounds below go in its `Field`)."""
Count = Annotated[int, Field(ge=0), AfterValidator(_fits_int64)]
"""A number of things or seconds: 0 up to 2**63 - 1."""


class ContractModel(BaseModel):
    """Base for nested contract shapes: immutable, tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Caller(ContractModel):
    """The person who called: who they are and how to reach them back."""

    name: Name
    phone: E164
    email: ShortText | None = None
    company: ShortText | None = None


class SubjectKind(StrEnum):
    """How a data subject is identified across services."""

    PHONE = "phone"
    EMAIL = "email"
    NAME = "name"


class SubjectId(ContractModel):
    """One identifier of a data subject, e.g. a caller's phone or a recipient's e-mail."""

    kind: SubjectKind
    value: ShortText = Field(
        min_length=1,
        description="The identifier: E.164 for phone, an address for email, a full name for name",
        examples=["+4915112345678", "anna.schmidt@example.de", "Anna Schmidt"],
    )

    @model_validator(mode="after")
    def _value_fits_kind(self) -> Self:
        if self.kind is SubjectKind.PHONE and not _E164_RE.fullmatch(self.value):
            raise ValueError("a phone identifier must be in E.164 notation, e.g. +492411234567")
        if self.kind is SubjectKind.EMAIL and "@" not in self.value:
            raise ValueError("an email identifier must contain '@'")
        return self

"""Value shapes shared by several payloads: people, data subjects, phone numbers, bounded text."""

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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

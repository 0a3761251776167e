"""A data subject's identifiers as services compare them: no I/O, usable in domain code."""

from __future__ import annotations

import unicodedata

from switchboard_contracts.common import SubjectId, SubjectKind

__all__ = ["subject_ids", "subject_key"]


def subject_ids(
    *, phone: str | None = None, email: str | None = None, name: str | None = None
) -> list[SubjectId]:
    """The identifiers of one person, e.g. a note's caller, for `is_restricted`."""
    given = ((SubjectKind.PHONE, phone), (SubjectKind.EMAIL, email), (SubjectKind.NAME, name))
    return [SubjectId(kind=kind, value=value) for kind, value in given if value]


def subject_key(identifier: SubjectId) -> str:
    """An identifier as compared across services: e-mails and names ignore case and spacing."""
    value = unicodedata.normalize("NFC", identifier.value).strip()
    if identifier.kind is not SubjectKind.PHONE:
        value = " ".join(value.casefold().split())
    return f"{identifier.kind}:{value}"

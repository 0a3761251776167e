"""A data subject's identifiers as services compare them: no I/O, usable in domain code."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from switchboard_contracts.common import SubjectId, SubjectKind

__all__ = [
    "RecordingWithdrawn",
    "Restricted",
    "RestrictedSubjects",
    "never_withdrawn",
    "nobody_restricted",
    "subject_ids",
    "subject_key",
]


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


@dataclass(frozen=True, slots=True)
class Restricted:
    """The data subjects whose processing is restricted for one tenant (R-DSR-18), as their
    keys: read once (the participant's `restricted_subjects`), asked per record."""

    keys: frozenset[str] = frozenset()

    def covers(self, identifiers: Iterable[SubjectId]) -> bool:
        """Whether any of one person's `identifiers` is restricted."""
        return bool(self.keys) and any(subject_key(i) in self.keys for i in identifiers)

    def identifiers(self) -> list[SubjectId]:
        """The restricted identifiers, as compared (`subject_key`): names and e-mails in
        lower case with single spaces."""
        found = []
        for key in sorted(self.keys):
            kind, _, value = key.partition(":")
            if kind in SubjectKind.__members__.values() and value:
                found.append(SubjectId(kind=SubjectKind(kind), value=value))
        return found


RestrictedSubjects = Callable[[str], Awaitable[Restricted]]
"""The subjects whose processing a tenant must not do now (R-DSR-18): the retention
participant's `restricted_subjects`."""

RecordingWithdrawn = Callable[[str, Iterable[SubjectId], str, datetime], Awaitable[bool]]
"""Whether the caller withdrew the consent to a call's recording (tenant, the caller's
identifiers, call id, the call's start): the retention participant's `recording_withdrawn`."""


async def nobody_restricted(tenant_id: str) -> Restricted:
    """A `RestrictedSubjects` for a service (or test) without a participant."""
    return Restricted()


async def never_withdrawn(
    tenant_id: str, caller: Iterable[SubjectId], call_id: str, started_at: datetime
) -> bool:
    """A `RecordingWithdrawn` for a service (or test) without a participant."""
    return False

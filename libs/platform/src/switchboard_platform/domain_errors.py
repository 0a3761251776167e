"""The errors a use case raises when it refuses a request: no I/O, no HTTP.

`switchboard_platform.errors` maps each to its HTTP status and error body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Conflict",
    "DomainError",
    "FieldProblem",
    "InvalidFields",
    "NotFound",
    "Unavailable",
    "Unprocessable",
    "validation_problems",
]


class DomainError(Exception):
    """A use case refused the request; the HTTP layer maps each kind to a status."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        """`field` is the dotted location at fault; without `query.`/`path.` it is in the body."""
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The resource does not exist, or belongs to another tenant (answered the same way)."""


class Conflict(DomainError):
    """The request collides with existing state, e.g. a forwarding number already taken."""


class Unprocessable(DomainError):
    """The request is well-formed but a domain rule refuses it; names the field at fault."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One input at fault: its dotted location, what is wrong, and the rule's kind."""

    field: str
    message: str
    kind: str = "value_error"


def validation_problems(errors: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    """pydantic's `ValidationError.errors()` as problems: the dotted location (empty for the
    whole value), the rule's message without pydantic's "Value error, " and its kind. Never
    the input: a refused value may be a secret or personal data."""
    return [
        FieldProblem(
            ".".join(str(part) for part in error.get("loc", ())),
            str(error.get("msg", "invalid")).removeprefix("Value error, "),
            str(error.get("type", "value_error")),
        )
        for error in errors
    ]


class InvalidFields(Unprocessable):
    """Several inputs at fault at once, each with its own location and kind (422)."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else FieldProblem("body", "invalid")
        super().__init__(first.message, field=first.field)

    @classmethod
    def of_validation(cls, errors: Iterable[Mapping[str, Any]], *, under: str) -> InvalidFields:
        """pydantic's `ValidationError.errors()` of a value found at `under` (`body.x`)."""
        return cls(
            FieldProblem(f"{under}.{p.field}" if p.field else under, p.message, p.kind)
            for p in validation_problems(errors)
        )


class Unavailable(DomainError):
    """The service cannot take this request now; the caller should retry after a while."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

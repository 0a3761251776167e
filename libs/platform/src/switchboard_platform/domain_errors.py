"""The errors a use case raises when it refuses a request: no I/O, no HTTP.

`switchboard_platform.errors` maps each to its HTTP status and error body.
"""

from __future__ import annotations

__all__ = ["Conflict", "DomainError", "NotFound", "Unavailable", "Unprocessable"]


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


class Unavailable(DomainError):
    """The service cannot take this request now; the caller should retry after a while."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

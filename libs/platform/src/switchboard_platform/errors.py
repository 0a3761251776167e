"""Domain errors every service raises, and how HTTP answers them."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure

_LOCATIONS = ("body", "query", "path", "header")


class DomainError(Exception):
    """A use case refused the request; subclasses map to an HTTP status."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        """`field` is the dotted location at fault; without `query.`/`path.` it is in the body."""
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The resource does not exist, or belongs to another tenant (answered the same way)."""

    status_code = 404


class Conflict(DomainError):
    """The request collides with existing state, e.g. a forwarding number already taken."""

    status_code = 409


class Unprocessable(DomainError):
    """The request is well-formed but a domain rule refuses it; names the field at fault."""

    status_code = 422


def install_error_handlers(app: FastAPI) -> None:
    """Answer domain errors with their status and a body naming the field at fault."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        detail: dict[str, object] = {"msg": exc.message}
        if exc.field is not None:
            loc: list[str | int] = [int(p) if p.isdigit() else p for p in exc.field.split(".")]
            detail["loc"] = loc if loc[0] in _LOCATIONS else ["body", *loc]
            return JSONResponse({"detail": [detail]}, status_code=exc.status_code)
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "database unavailable, try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(DomainError, handle)
    # a lost database is our outage, not the caller's error: 503, never a 500
    app.add_exception_handler(ConnectionFailure, unavailable)

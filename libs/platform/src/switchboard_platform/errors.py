"""Domain errors every service raises, and the one shape in which HTTP answers every error.

Every error body is `{"detail": "<message>"}` or, for input at fault,
`{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`: the field and the rule, never
the value (FastAPI's default echoes the input, which holds personal data and can fail to
serialise: NaN, lone surrogates).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from .domain_errors import Conflict as Conflict
from .domain_errors import DomainError as DomainError
from .domain_errors import FieldProblem as FieldProblem
from .domain_errors import InvalidFields as InvalidFields
from .domain_errors import NotFound as NotFound
from .domain_errors import Unavailable as Unavailable
from .domain_errors import Unprocessable as Unprocessable

_LOCATIONS = ("body", "query", "path", "header")


class FieldError(BaseModel):
    """One input at fault: where it is and which rule it breaks."""

    loc: list[str | int]
    msg: str
    type: str = "value_error"


class ErrorBody(BaseModel):
    """Every error answer: a message, or the inputs at fault."""

    detail: str | list[FieldError]


def _described(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorBody}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _described("No valid bearer token"),
    403: _described("The token's role may not do this"),
    404: _described("No such resource, or another tenant's"),
    405: _described("Method not allowed here"),
    413: _described("Request body too large"),
    415: _described("The body is not JSON (`Content-Type` must be `application/json`)"),
    422: _described("An input breaks a rule; `loc` names it"),
    431: _described("Request headers too large"),
    503: _described("A dependency is unavailable; retry after `Retry-After` seconds"),
}
"""Documented on every API route (the OpenAPI document lists what a caller can get)."""


def field_errors(errors: list[dict[str, Any]] | Any) -> list[dict[str, Any]]:
    """pydantic/FastAPI errors reduced to location, message and type: no input, no context."""
    cleaned = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        cleaned.append({"loc": loc or ["body"], "msg": message, "type": str(err.get("type"))})
    return cleaned


_PARAM = re.compile(r"\\\{[^}]+\\\}")


def _route_table(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    """Each documented path as a pattern, with its methods (from the OpenAPI document).

    FastAPI nests included routers, so the document is the one complete list of paths.
    """
    table = getattr(app.state, "route_table", None)
    if table is None:
        table = []
        for path, operations in app.openapi().get("paths", {}).items():
            pattern = re.compile("^" + _PARAM.sub("[^/]+", re.escape(path)) + "$")
            table.append((pattern, {method.upper() for method in operations}))
        app.state.route_table = table
    return table


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    allowed: set[str] = set()
    for pattern, methods in _route_table(app):
        if pattern.match(request.url.path):
            allowed |= methods
    return sorted(allowed)


def status_of(error: DomainError) -> int:
    """The HTTP status that answers a domain error (400 for a kind not listed)."""
    kinds = ((NotFound, 404), (Conflict, 409), (Unprocessable, 422), (Unavailable, 503))
    for kind, status in kinds:
        if isinstance(error, kind):
            return status
    return 400


def _located(problem: FieldProblem) -> dict[str, Any]:
    """A field error of the shape above; a location without `query.`/`path.`… is the body's."""
    loc: list[str | int] = [int(p) if p.isdigit() else p for p in problem.field.split(".")]
    located = loc if loc[0] in _LOCATIONS else ["body", *loc]
    return {"loc": located, "msg": problem.message, "type": problem.kind}


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the shapes above; never a 500 for bad input or a lost database."""

    async def domain(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        if isinstance(exc, Unavailable):
            headers = {"Retry-After": str(exc.retry_after_s)}
            return JSONResponse({"detail": exc.message}, status_code=503, headers=headers)
        if isinstance(exc, InvalidFields):
            detail = [_located(problem) for problem in exc.problems]
            return JSONResponse({"detail": detail}, status_code=status_of(exc))
        if exc.field is not None:
            detail = [_located(FieldProblem(exc.field, exc.message))]
            return JSONResponse({"detail": detail}, status_code=status_of(exc))
        return JSONResponse({"detail": exc.message}, status_code=status_of(exc))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 400:  # FastAPI's "error parsing the body": the input's fault
            detail = [{"loc": ["body"], "msg": "the body could not be read", "type": "body"}]
            return JSONResponse({"detail": detail}, status_code=422)
        if exc.status_code == 405:  # name every method of the path, not only the first route's
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "database unavailable, try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(DomainError, domain)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # a lost database is our outage, not the caller's error: 503, never a 500
    app.add_exception_handler(ConnectionFailure, unavailable)

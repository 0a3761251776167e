"""`switchboard token`: print an HS256 bearer token for trying the HTTP APIs in dev."""

from __future__ import annotations

import argparse
import os
import sys
import time

import jwt
from pydantic import BaseModel, Field, ValidationError, model_validator

from switchboard_dev.command import SubParsers
from switchboard_platform.auth import Role
from switchboard_platform.domain_errors import validation_problems
from switchboard_platform.settings import DEV_JWT_SECRET

SECRET_VARIABLE = "SWITCHBOARD_JWT_SECRET"  # noqa: S105 - a variable name, not a secret
ISSUER = "switchboard-dev"
AUDIENCE = "switchboard"


class TokenRequest(BaseModel):
    """What the token says about its bearer."""

    roles: list[Role] = Field(min_length=1)
    tenant: str | None = Field(default=None, min_length=1, max_length=100)
    sub: str = Field(min_length=1, max_length=200)
    ttl_s: int = Field(default=3600, gt=0)

    @model_validator(mode="after")
    def _client_needs_tenant(self) -> TokenRequest:
        if Role.CLIENT in self.roles and self.tenant is None:
            raise ValueError("a client token needs --tenant")
        return self


def mint(request: TokenRequest, secret: str, now: int | None = None) -> str:
    """Sign the claims of `request` with HS256."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, object] = {
        "sub": request.sub,
        "roles": [role.value for role in request.roles],
        "iat": issued,
        "exp": issued + request.ttl_s,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    if request.tenant is not None:
        claims["tenant"] = request.tenant
    return jwt.encode(claims, secret, algorithm="HS256")


def add_parser(subparsers: SubParsers, name: str) -> argparse.ArgumentParser:
    """Add `token` and its options."""
    parser = subparsers.add_parser(
        name,
        help="print a signed dev bearer token",
        description=f"Print an HS256 JWT signed with ${SECRET_VARIABLE} (dev default if unset).",
    )
    parser.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=[role.value for role in Role],
        help="a role of the bearer; repeat for several",
    )
    parser.add_argument("--tenant", help="the tenant id (required for the client role)")
    parser.add_argument("--sub", help="the subject (default: dev-<first role>)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the token on stdout; explain refusals and the dev secret on stderr."""
    try:
        request = TokenRequest(
            roles=args.roles,
            tenant=args.tenant,
            sub=args.sub or f"dev-{args.roles[0]}",
            ttl_s=args.ttl,
        )
    except ValidationError as exc:
        for problem in validation_problems(exc.errors(include_input=False)):
            where = f"{problem.field}: " if problem.field else ""
            print(f"switchboard token: {where}{problem.message}", file=sys.stderr)
        return 2
    secret = os.environ.get(SECRET_VARIABLE) or DEV_JWT_SECRET
    if secret == DEV_JWT_SECRET:
        print(
            f"warning: signed with the dev default secret; set {SECRET_VARIABLE} for "
            "anything but local development",
            file=sys.stderr,
        )
    print(mint(request, secret))
    return 0
